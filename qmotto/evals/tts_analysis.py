"""The test-time-scaling runner's analysis: per-problem estimates, rows and the maj@k breakdown.

From the samples of `chunks.sample_all` (per sampler, R groups of N per
problem: correctness, answer hashes, generated lengths, mean token
log-probabilities), `analyze_tts` computes for every sampler:
  * pass@k, maj@k, weighted@k and bon@k at each k of config.ks, per problem
    (`metrics.strategy_at_k`, the estimator chosen for the sampler).
    Answers are ids from `metrics.encode_answers` over each problem's answer
    hashes (a hash stands for its answer string; equal strings, equal
    hashes), shared by all samplers of a problem. The best-of-n score is the
    mean token log-probability (`metrics.mean_token_logprob`, computed when
    sampling), the weighted vote's weight exp(mean token log-probability),
    the geometric-mean probability of the completion's tokens, in (0, 1].
  * first_success for each false-positive rate q of config.false_positive_rates:
    expected samples drawn (capped at N = config.group_size), solve rate
    within N and expected tokens spent, in rounds of b = config.round_size
    (`metrics.first_success`; the verifier is `metrics.imperfect_verifier`
    with seed config.seed on the problems' own indices, so every sampler
    meets the same decisions slot by slot).
    The rounds are read from the slot order of the one group of N drawn at
    once. For an extensible sampler this is the same as drawing in rounds:
    slot i does not depend on the group size, so the first r b slots of the
    group are exactly the samples r rounds of b would draw with the same key
    and group id (their points, and in code mode the shared rotations, are
    functions of the key, the group id and the index or step alone), and
    the decision to stop after round r reads only those slots; the later
    slots are drawn but never read. For i.i.d. samples the estimate averages
    over every ordering of N of the pooled samples instead.
  * a row per (metric, k) or (first_success, q) with a 95% bootstrap
    interval over problems and, for coupled samplers, the samples saved
    against i.i.d.: 1 - k'/k at the matched i.i.d. value
    (`metrics.bootstrap_samples_saved`; NaN where the i.i.d. value is 0) for
    the metrics at k, 1 - E[samples] / E_iid[samples] for first_success
    (`metrics.bootstrap_cost_saved`, and the same for tokens).
The maj@k breakdown (at each k of config.breakdown_ks, when "majority" is
among the strategies) splits the problems by the plug-in maj@infinity of all
samples of all samplers (`metrics.majority_at_infinity`: the model's most
likely answer right, > 0.5, or wrong, < 0.5; exact ties are in neither) and
compares each sampler's maj@k with i.i.d.'s there (paired over problems).
A better estimate of the vote's outcome (coupling) helps where the mode is
right and hurts where it is wrong.
"""

from __future__ import annotations

import numpy as np

from qmotto import metrics
from qmotto import sampling
from qmotto.evals import run_config
from qmotto.evals import run_setup
from qmotto.evals import tts_config
from qmotto.utils import progress

LEVEL = 0.95
# Breakdown classes: the plug-in maj@infinity of a problem above or below 1/2.
MODE_CLASSES = ("mode_right", "mode_wrong")


def shared_answer_ids(groups: dict[str, dict]) -> dict[str, np.ndarray]:
  """Per sampler int64[P, R, N] answer ids, one numbering per problem across all samplers (-1: none).

  Args:
    groups: sampler -> arrays [P, R, N] with "answered" and "answer_hash".
  """
  names = list(groups)
  parts = []
  for name in names:
    hashes = groups[name]["answer_hash"].astype(object)
    hashes[~groups[name]["answered"]] = None
    parts.append(hashes.reshape(hashes.shape[0], -1))
  ids = metrics.encode_answers(np.concatenate(parts, axis=1))
  out, start = {}, 0
  for name in names:
    shape = groups[name]["answer_hash"].shape
    size = shape[1] * shape[2]
    out[name] = ids[:, start : start + size].reshape(shape)
    start += size
  return out


def strategy_scores(strategy: str, mean_logprob: np.ndarray) -> np.ndarray | None:
  """What a strategy reads beside the answers: exp(mean logprob) weights, mean logprob scores, or None."""
  kind = metrics.get_strategy(strategy).scores
  if kind == "weights":
    return np.exp(mean_logprob)
  if kind == "scores":
    return mean_logprob
  return None


def per_problem_at_ks(config, name: str, group: dict, ids: np.ndarray) -> dict[str, np.ndarray]:
  """metric label -> float64[P, K]: each k-strategy of the config at every k, for one sampler."""
  sampler = sampling.get_sampler(name)
  out = {}
  for strategy in tts_config.k_strategies(config):
    scores = strategy_scores(strategy, group["mean_logprob"])
    columns = [
        metrics.strategy_at_k(
            strategy, correct=group["correct"], sampler=sampler, k=int(k),
            answer_ids=None if strategy == "pass" else ids, scores=scores,
            num_subsets=int(config.num_subsets), seed=int(config.seed),
        )
        for k in config.ks
    ]
    out[tts_config.METRICS[strategy]] = np.stack(columns, axis=-1)
  return out


def first_success_per_problem(config, s: run_setup.Setup, name: str, group: dict) -> dict[float, metrics.FirstSuccess]:
  """q -> FirstSuccess of float64[P] (expected samples, solve rate, expected tokens) for one sampler."""
  indices = np.array([p.index for p in s.problems], np.int64)
  out = {}
  for q in tts_config.false_positive_rates(config):
    accepted = metrics.imperfect_verifier(
        group["correct"], false_positive_rate=q, seed=int(config.seed), problem_indices=indices,
        answered=group["answered"],
    )
    out[q] = metrics.first_success(
        accepted, group["correct"], sampler=sampling.get_sampler(name), round_size=int(config.round_size),
        lengths=group["lengths"],
    )
  return out


def _saved_fields(interval, prefix: str = "") -> dict:
  return {f"{prefix}saved_vs_iid": float(interval.estimate), f"{prefix}saved_low": float(interval.low),
          f"{prefix}saved_high": float(interval.high)}


def _no_saving(prefix: str = "") -> dict:
  return {f"{prefix}saved_vs_iid": None, f"{prefix}saved_low": None, f"{prefix}saved_high": None}


def k_rows(config, values: dict[str, dict[str, np.ndarray]]) -> list[dict]:
  """Rows of the metrics at each k: value with interval, samples saved vs i.i.d. for coupled samplers."""
  ks = [int(k) for k in config.ks]
  seed, resamples = int(config.seed), int(config.num_resamples)
  rows = []
  for name, per_metric in values.items():
    for label, per_problem in per_metric.items():
      ci = metrics.bootstrap_ci(per_problem, seed=seed, num_resamples=resamples, level=LEVEL)
      iid = values[run_config.BASELINE][label]
      for j, k in enumerate(ks):
        row = dict(sampler=name, metric=label, k=k, q=None, value=float(ci.mean[j]), ci_low=float(ci.low[j]),
                   ci_high=float(ci.high[j]), ci_level=LEVEL)
        if name == run_config.BASELINE:
          row.update(_no_saving())
        elif iid[:, j].mean() <= 0.0:  # every sampler "reaches" an i.i.d. value of 0 at once.
          row.update(saved_vs_iid=float("nan"), saved_low=float("nan"), saved_high=float("nan"))
        else:
          row.update(_saved_fields(metrics.bootstrap_samples_saved(
              ks, per_problem, iid, k, seed=seed, num_resamples=resamples, level=LEVEL)))
        rows.append(row)
  return rows


def first_success_rows(config, values: dict[str, dict[float, metrics.FirstSuccess]]) -> list[dict]:
  """Rows of first_success per sampler and q: solve rate (value), expected samples and tokens, savings."""
  seed, resamples = int(config.seed), int(config.num_resamples)
  rows = []
  for name, per_q in values.items():
    for q, fs in per_q.items():
      ci = metrics.bootstrap_ci(np.stack([fs.solved, fs.samples, fs.tokens], axis=1), seed=seed,
                                num_resamples=resamples, level=LEVEL)
      row = dict(
          sampler=name, metric=tts_config.FIRST_SUCCESS, k=int(config.group_size), q=float(q),
          value=float(ci.mean[0]), ci_low=float(ci.low[0]), ci_high=float(ci.high[0]), ci_level=LEVEL,
          round_size=int(config.round_size),
          expected_samples=float(ci.mean[1]), samples_low=float(ci.low[1]), samples_high=float(ci.high[1]),
          expected_tokens=float(ci.mean[2]), tokens_low=float(ci.low[2]), tokens_high=float(ci.high[2]),
      )
      if name == run_config.BASELINE:
        row.update(_no_saving() | _no_saving("tokens_"))
      else:
        iid = values[run_config.BASELINE][q]
        row.update(_saved_fields(metrics.bootstrap_cost_saved(fs.samples, iid.samples, seed=seed,
                                                              num_resamples=resamples, level=LEVEL)))
        row.update(_saved_fields(metrics.bootstrap_cost_saved(fs.tokens, iid.tokens, seed=seed,
                                                              num_resamples=resamples, level=LEVEL), "tokens_"))
      rows.append(row)
  return rows


def majority_breakdown(config, mode: np.ndarray, values: dict[str, dict[str, np.ndarray]]) -> list[dict]:
  """maj@k per sampler at each k of config.breakdown_ks, on the problems whose mode is right, and wrong.

  Args:
    config: the run config.
    mode: float64[P], the plug-in maj@infinity of each problem.
    values: sampler -> metric label -> float64[P, K].

  Returns:
    Rows with sampler, k, problems (one of MODE_CLASSES), num_problems,
    value, ci_low, ci_high (maj@k on those problems) and, for coupled
    samplers, diff_vs_iid, diff_low, diff_high (the sampler's maj@k minus
    i.i.d.'s, paired over the problems); None where the class is empty.
  """
  label = tts_config.METRICS["majority"]
  ks = [int(k) for k in config.ks]
  masks = dict(zip(MODE_CLASSES, (mode > 0.5, mode < 0.5)))
  rows = []
  for k in config.breakdown_ks:
    j = ks.index(int(k))
    for problems, mask in masks.items():
      iid = values[run_config.BASELINE][label][mask, j]
      for name, per_metric in values.items():
        row = dict(sampler=name, k=int(k), problems=problems, num_problems=int(mask.sum()), value=None,
                   ci_low=None, ci_high=None, diff_vs_iid=None, diff_low=None, diff_high=None)
        if mask.any():
          mine = per_metric[label][mask, j]
          ci = metrics.bootstrap_ci(np.stack([mine, mine - iid], axis=1), seed=int(config.seed),
                                    num_resamples=int(config.num_resamples), level=LEVEL)
          row.update(value=float(ci.mean[0]), ci_low=float(ci.low[0]), ci_high=float(ci.high[0]))
          if name != run_config.BASELINE:
            row.update(diff_vs_iid=float(ci.mean[1]), diff_low=float(ci.low[1]), diff_high=float(ci.high[1]))
        rows.append(row)
  return rows


def sampler_stats(samples: dict, name: str, group: dict) -> dict:
  """What a sampler drew: sample count, completion lengths, truncation, answers, pass@1, timings, examples."""
  stats = samples["samplers"][name]["stats"]
  return dict(
      samples=int(group["correct"].size),
      mean_completion_tokens=float(group["lengths"].mean()),
      truncated=float(1.0 - group["stopped"].mean()),
      answered=float(group["answered"].mean()),
      pass_at_1=float(group["correct"].mean()),
      mean_logprob=float(group["mean_logprob"].mean()),
      sampling_seconds=float(stats["seconds"]),
      sampled_chunks=int(stats["sampled_chunks"]),
      loaded_chunks=int(stats["loaded_chunks"]),
      examples=list(group["examples"]),
  )


def analyze_tts(config, s: run_setup.Setup, samples: dict) -> dict:
  """Everything the result holds beyond the run's description, from `chunks.sample_all`'s output.

  Returns:
    {"rows": metric rows (`k_rows`, then `first_success_rows`) with task,
    model, style, num_problems, group_size and replications; "majority_breakdown":
    `majority_breakdown` rows; "per_problem": sampler -> {metric label:
    [P][K], "first_success": {str(q): {"solved", "samples", "tokens": [P]}}};
    "majority_at_infinity": [P]; "samplers": sampler -> `sampler_stats`;
    "arrays": sampler -> the sample arrays [P, R, N] the estimates come from
    (correct, answered, answer_ids, lengths, mean_logprob)}.
  """
  size = int(config.group_size)
  names = list(config.samplers)
  groups = {name: samples["samplers"][name]["groups"][size] for name in names}
  ids = shared_answer_ids(groups)
  with_first = tts_config.FIRST_SUCCESS in tts_config.strategy_names(config)
  bar = progress.progress_bar("auto" if config.progress else "off", total=len(names), initial=0,
                              desc=f"{s.task.name}/{s.model_name} estimates", unit="sampler")
  at_ks, first = {}, {}
  try:
    for name in names:
      at_ks[name] = per_problem_at_ks(config, name, groups[name], ids[name])
      if with_first:
        first[name] = first_success_per_problem(config, s, name, groups[name])
      bar.update(1)
  finally:
    bar.close()
  rows = k_rows(config, at_ks) + first_success_rows(config, first)
  for row in rows:
    row.update(task=s.task.name, model=s.model_name, style=s.style, num_problems=len(s.problems),
               group_size=size, replications=run_config.replications(config, row["sampler"]))
  breakdown, mode = [], None
  if list(config.breakdown_ks) and "majority" in tts_config.strategy_names(config):
    pooled_ids = np.concatenate([ids[name] for name in names], axis=1)
    pooled_correct = np.concatenate([groups[name]["correct"] for name in names], axis=1)
    mode = metrics.majority_at_infinity(pooled_ids, pooled_correct)
    breakdown = majority_breakdown(config, mode, at_ks)
  per_problem = {}
  for name in names:
    per_problem[name] = {label: np.round(v, 6).tolist() for label, v in at_ks[name].items()}
    if with_first:
      per_problem[name][tts_config.FIRST_SUCCESS] = {
          repr(q): {field: np.round(getattr(fs, field), 6).tolist() for field in ("solved", "samples", "tokens")}
          for q, fs in first[name].items()
      }
  arrays = {
      name: dict(correct=groups[name]["correct"], answered=groups[name]["answered"], answer_ids=ids[name],
                 lengths=groups[name]["lengths"], mean_logprob=groups[name]["mean_logprob"])
      for name in names
  }
  return dict(
      rows=rows,
      majority_breakdown=breakdown,
      per_problem=per_problem,
      majority_at_infinity=None if mode is None else np.round(mode, 6).tolist(),
      samplers={name: sampler_stats(samples, name, groups[name]) for name in names},
      arrays=arrays,
  )
