"""The pass@k runner's analysis: rows of the comparison and per-sampler statistics from the samples.

`analyze` gives, for every sampler and k, the rows of `report.passk_rows`:
the unbiased pass@k with a bootstrap interval, the per-problem union bound
mean_i min(1, k p_i) with its bias-aware interval (p_i from all samples of
all samplers, `report.pooled_counts`) and the samples saved
vs i.i.d. with an interval (NaN where the i.i.d. pass@k is 0: any sampler
"reaches" 0 at once, so there is nothing to measure). Rows also carry the
mean number of distinct answers per group of k (`scoring.distinct_per_group`).
"""

from __future__ import annotations

import numpy as np
from absl import logging

from qmotto import sampling
from qmotto.evals import report
from qmotto.evals import run_config
from qmotto.evals import run_setup
from qmotto.evals import scoring

# Completion lengths above this fraction at max_new_tokens get a warning.
TRUNCATION_WARNING = 0.05


def _group_for_k(groups: dict, k: int) -> int:
  """The group size that serves k: the separate groups of size k, else the groups of n."""
  return k if k in groups else max(groups)


def analyze(config, s: run_setup.Setup, samples: dict) -> tuple[list[dict], dict]:
  """(rows, per-sampler statistics) from `chunks.sample_all`'s output.

  Returns:
    The rows (one per sampler and k, with task, model, style, group size,
    replications and distinct_per_group), and {"stats": sampler -> sample
    counts, completion lengths, truncation, answered, pass@1, timings and
    examples; "per_problem": sampler -> per-problem pass@k [P][K];
    "answer_probs": p_i [P] from all samples of all samplers; "answer_samples":
    the samples per problem behind them}.
  """
  ks = [int(k) for k in config.ks]
  samples = samples["samplers"]
  correct = {name: {size: g["correct"] for size, g in samples[name]["groups"].items()} for name in config.samplers}
  # Every sample of every sampler is an exact draw: pooled, they estimate p_i
  # without bias and with less variance than the i.i.d. samples alone.
  num_correct, num_samples = report.pooled_counts(correct)
  answer_probs = num_correct / num_samples
  rows = report.passk_rows(correct, ks, seed=int(config.seed), num_resamples=int(config.num_resamples))
  distinct, stats, per_problem = {}, {}, {}
  for name in config.samplers:
    sampler = sampling.get_sampler(name)
    groups = samples[name]["groups"]
    codes = {size: scoring.answer_codes(g["answered"], g["answer_hash"]) for size, g in groups.items()}
    distinct[name] = {
        k: float(scoring.distinct_per_group(codes[_group_for_k(groups, k)], sampler, k).mean()) for k in ks
    }
    full = groups[config.group_size]
    lengths = np.concatenate([g["lengths"].ravel() for g in groups.values()])
    stopped = np.concatenate([g["stopped"].ravel() for g in groups.values()])
    stats[name] = dict(
        samples=int(sum(g["correct"].size for g in groups.values())),
        mean_completion_tokens=float(lengths.mean()),
        truncated=float(1.0 - stopped.mean()),
        answered=float(full["answered"].mean()),
        pass_at_1=float(full["correct"].mean()),
        sampling_seconds=float(samples[name]["stats"]["seconds"]),
        sampled_chunks=int(samples[name]["stats"]["sampled_chunks"]),
        loaded_chunks=int(samples[name]["stats"]["loaded_chunks"]),
        examples=list(full["examples"]),
    )
    per_problem[name] = np.round(report.per_problem_pass_at_k(sampler, correct[name], ks), 6).tolist()
    if stats[name]["truncated"] > TRUNCATION_WARNING:
      logging.warning("%s: %.0f%% of completions hit max_new_tokens=%d without a stop token.",
                      name, 100 * stats[name]["truncated"], s.max_new_tokens)
  iid_pass = {r["k"]: r["pass_at_k"] for r in rows if r["sampler"] == run_config.BASELINE}
  for row in rows:
    name = row["sampler"]
    if iid_pass[row["k"]] <= 0.0:
      # Every sampler "reaches" an i.i.d. pass@k of 0 at k' = 1: no saving to measure.
      row.update(samples_saved=float("nan"), saved_low=float("nan"), saved_high=float("nan"))
    row.update(
        task=s.task.name,
        model=s.model_name,
        style=s.style,
        num_problems=len(s.problems),
        group_size=_group_for_k(correct[name], row["k"]),
        replications=run_config.replications(config, name),
        distinct_per_group=distinct[name][row["k"]],
    )
  return rows, dict(stats=stats, per_problem=per_problem, answer_probs=np.round(answer_probs, 6).tolist(),
                    answer_samples=int(num_samples.min()))
