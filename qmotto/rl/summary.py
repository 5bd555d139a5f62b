"""GRPO results across runs: the result files, steps to a target, the comparison with i.i.d., the table.

    summary = build_summary(["results/grpo/maze_experiment", "results/grpo/arc_1d_experiment"])
    write_summary(summary, "results/grpo")   # summary.json, summary_by_sampler.json
    print(format_summary(summary))

A run's result file (`grpo.run`) is <output_dir>/<task>_<arm>_seed<seed>.json
(`result_name`), kind RESULT_KIND, holding the final metrics, the whole log,
the config and the command. A run belongs to an experiment (config.experiment;
FIRST_EXPERIMENT for runs that predate the field) and an arm (`run_arm`: the
sampler, "+dynamic" with dynamic sampling, "_G<group size>" outside the first
experiment). The summary asks how many steps each arm needs to reach a
held-out target (`steps_to_target`, also on a moving average of
`MOVING_AVERAGE` evaluations, and as samples drawn), and the area under the
held-out curve (the mean over the evaluations after step 0): per run, per
(experiment, task, arm) with t-intervals over seeds, and paired with the
i.i.d. arm of the same experiment, group size and seed, which saw the same
prompts and evaluation keys.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from qmotto.utils import files

RESULT_KIND = "qmotto.grpo"
SUMMARY_NAME = "summary.json"  # the per-run rows (a list).
AGGREGATE_NAME = "summary_by_sampler.json"  # the per-(task, sampler) rows.
SWEEP_NAME = "summary_sweep.json"  # the learning-rate sweeps (`learning_rate_sweep`), when there are any.
BASELINE_SAMPLER = "iid"  # the sampler every other one is compared with.
# A learning-rate sweep's experiment is named "<experiment><SWEEP_MARK><lr>" (`learning_rate_sweep`).
SWEEP_MARK = "_sweep_lr"
FIRST_EXPERIMENT = "grpo1"  # results/grpo/EXPERIMENT.md; results without config.experiment belong to it.
# The effect the second experiment is powered for: coupled steps = TARGET_RATIO x i.i.d. steps.
TARGET_RATIO = 0.67
MOVING_AVERAGE = 3  # evaluations in the trailing moving average of steps_to_target_ma.


def result_name(task: str, arm: str, seed: int) -> str:
  """The file name (without .json) of a run's result: <task>_<arm>_seed<seed>."""
  return f"{task}_{arm}_seed{seed}"


def experiment_of(config: dict) -> str:
  """The experiment a run's config belongs to."""
  return config.get("experiment") or FIRST_EXPERIMENT


def run_arm(config: dict) -> str:
  """The arm of a run: its sampler, "+dynamic" with dynamic sampling, "_G<G>" outside the first experiment."""
  arm = config["sampler"] + ("+dynamic" if config.get("dynamic_sampling") else "")
  return arm if experiment_of(config) == FIRST_EXPERIMENT else f"{arm}_G{config['group_size']}"


def baseline_arm(config: dict) -> str:
  """The i.i.d. arm a run is compared with: same experiment and group size, no dynamic sampling."""
  return run_arm({**config, "sampler": BASELINE_SAMPLER, "dynamic_sampling": False})


def load_runs(output_dirs: str | Sequence[str]) -> list[dict]:
  """Every GRPO result file in one folder or several, sorted by (task, sampler, seed).

  Each result gets "results_dir", the folder it was read from, "experiment"
  and "arm" (`experiment_of`, `run_arm`).

  Raises:
    ValueError: two files hold a result of the same (experiment, task, arm, seed).
  """
  dirs = [output_dirs] if isinstance(output_dirs, str) else list(output_dirs)
  results, seen = [], {}
  for directory in dirs:
    for path, result in files.load_results(directory, RESULT_KIND, skip=(SUMMARY_NAME, AGGREGATE_NAME)):
      config = {**result["config"], "sampler": result["sampler"]}
      experiment, arm = experiment_of(config), run_arm(config)
      run = (experiment, result["task"], arm, result["seed"])
      if run in seen:
        raise ValueError(f"{path} and {seen[run]} are both results of (experiment, task, arm, seed) = {run}.")
      seen[run] = path
      results.append({**result, "results_dir": directory, "experiment": experiment, "arm": arm})
  return sorted(results, key=lambda r: (r["experiment"], r["task"], r["arm"], r["seed"]))


def steps_to_target(records: Sequence[dict], target: float, metric: str = "pass@1", window: int = 1) -> int | None:
  """The first eval step whose `metric` reaches `target` (None if never).

  With window > 1, the trailing mean of the metric over the last `window`
  evaluations (fewer at the start) must reach it: one lucky evaluation no
  longer counts.
  """
  evals = sorted((r for r in records if r.get("kind") == "eval" and r.get(metric) is not None),
                 key=lambda r: r["step"])
  for i, record in enumerate(evals):
    recent = [r[metric] for r in evals[max(0, i + 1 - window): i + 1]]
    if np.mean(recent) >= target:
      return int(record["step"])
  return None


def samples_through(records: Sequence[dict], step: int, per_step: float) -> float:
  """Samples drawn by the end of `step`, from the train records' "samples_drawn" (a mean per step over
  each record's window of steps); `per_step` (B * G) for steps whose records predate the field."""
  total, previous = 0.0, 0
  for record in sorted((r for r in records if r.get("kind") == "train"), key=lambda r: r["step"]):
    if previous >= step:
      break
    total += (min(record["step"], step) - previous) * float(record.get("samples_drawn", per_step))
    previous = record["step"]
  return total + max(step - previous, 0) * per_step


def _final_metric(result: dict, metric: str):
  evals = [r for r in result["log"] if r.get("kind") == "eval"]
  return evals[-1].get(metric) if evals else None


def _mean_metric(result: dict, metric: str):
  """The mean of `metric` over the evaluations after step 0 (an area under the learning curve)."""
  values = [r[metric] for r in result["log"] if r.get("kind") == "eval" and r["step"] > 0 and r.get(metric) is not None]
  return float(np.mean(values)) if values else None


def _t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high): Student's t-interval of the mean at `level` (nan bounds for one value)."""
  import scipy.stats  # pylint: disable=g-import-not-at-top

  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if len(values) < 2:
    return mean, float("nan"), float("nan")
  half = float(scipy.stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
  return mean, mean - half, mean + half


def paired_power(differences: Sequence[float], effect: float, level: float = 0.95, power_of: float = 0.8) -> dict:
  """What a two-sided paired t-test on these per-seed differences could have seen.

  Args:
    differences: arm minus baseline, one per seed (>= 2).
    effect: the true mean difference to detect (e.g. -0.33 x the baseline's mean steps).
    level: the test's confidence (0.95: a 5% two-sided test).
    power_of: the power at which "detectable" is quoted.

  Returns:
    {"seeds", "sd" (of the differences), "power" (the chance to reject at
    `effect`, by the noncentral t with the observed sd), "detectable" (the
    smallest |mean difference| with power `power_of`: (t_level + t_power) x
    sd / sqrt(n), the usual approximation)}; nan where sd is 0 or n < 2.
  """
  import scipy.stats  # pylint: disable=g-import-not-at-top

  d = np.asarray(differences, np.float64)
  n = len(d)
  sd = float(d.std(ddof=1)) if n > 1 else float("nan")
  if n < 2 or not sd > 0:
    return {"seeds": n, "sd": sd, "power": float("nan"), "detectable": float("nan")}
  df, critical = n - 1, scipy.stats.t.ppf((1 + level) / 2, n - 1)
  shift = abs(effect) / (sd / np.sqrt(n))
  power = scipy.stats.nct.sf(critical, df, shift) + scipy.stats.nct.cdf(-critical, df, shift)
  detectable = (critical + scipy.stats.t.ppf(power_of, df)) * sd / np.sqrt(n)
  return {"seeds": n, "sd": sd, "power": float(power), "detectable": float(detectable)}


def build_summary(output_dirs: str | Sequence[str]) -> dict:
  """Steps to a target held-out metric per run, and per (experiment, task, arm) with intervals.

  `output_dirs`: one results folder or several (`load_runs`), e.g. one
  experiment per task family.

  The target of an (experiment, task) is its runs' `config.target` when > 0;
  otherwise the mean final `target_metric` of its i.i.d. runs (the paper's
  question: how many steps does a sampler need to reach the accuracy i.i.d.
  GRPO ends with). A run that never reaches it has steps_to_target null.

  Returns:
    {"rows": [{"task", "sampler", "seed", "steps_to_target", "target",
    "target_metric", "final", "mean_eval" (mean of the metric over the
    evaluations after step 0: the area under the held-out curve), "num_steps",
    "eval_every", "zero_variance" (mean over the run), "distinct" (mean),
    "init_checkpoint", "init_step" (the starting policy), "results_dir",
    "experiment", "arm", "group_size", "dynamic_sampling",
    "steps_to_target_ma" (on the trailing mean of MOVING_AVERAGE
    evaluations), "samples_to_target", "samples_to_target_ma" (samples drawn
    by then, dynamic sampling's extra draws included), "samples_drawn" (the
    whole run), "zero_variance_drawn" (mean over the run, all drawn groups),
    "band_share" (of the candidates in the difficulty band; None without
    one), "learning_rate"}], "aggregate": [{"experiment", "task", "arm", "sampler", "seeds",
    "reached", "mean_steps", "ci_low", "ci_high" (t-interval over seeds;
    unreached runs count as num_steps, a lower bound, and "censored" says how
    many), "mean_steps_ma" (likewise on the moving average), "final" and
    "mean_eval" ({"mean", "ci_low", "ci_high"} over seeds), "zero_variance",
    "zero_variance_drawn", "distinct", "steps_saved_vs_iid" (1 - mean steps
    / i.i.d. mean steps), "paired_vs_iid" (None for the i.i.d. arm; else over
    the seeds both arms ran, which share prompts and evaluation keys:
    {"baseline", "seeds", "steps_diff", "steps_ma_diff", "samples_ma_diff",
    "mean_eval_diff"}, each {"mean", "ci_low", "ci_high"} of arm minus
    i.i.d., "steps_ma_ratio" {"mean", "ci_low", "ci_high"}: the ratio of
    the mean steps on the moving average, with a paired bootstrap interval
    over seeds, and `paired_power` of the steps differences for a
    TARGET_RATIO effect ("steps_ma_power"), and "mean_eval_detectable": the
    AUC difference a paired t-test sees with 80% power (`paired_power`'s
    "detectable" of the AUC differences))}]}.
  """
  results = load_runs(output_dirs)
  rows = []
  for experiment, task in sorted({(r["experiment"], r["task"]) for r in results}):
    runs = [r for r in results if r["task"] == task and r["experiment"] == experiment]
    metric = runs[0]["config"].get("target_metric", "pass@1")
    target = float(runs[0]["config"].get("target", 0.0))
    if target <= 0:
      finals = [_final_metric(r, metric) for r in runs if r["sampler"] == BASELINE_SAMPLER]
      finals = [x for x in finals if x is not None]
      target = float(np.mean(finals)) if finals else None
    if len({(r["config"].get("target", 0.0), r["config"].get("target_metric", "pass@1")) for r in runs}) > 1:
      raise ValueError(f"the {experiment} {task} runs were given different config.target / target_metric values.")
    for r in runs:
      rows.append(_row(r, target, metric))
  aggregate = []
  for experiment, task, arm in sorted({(r["experiment"], r["task"], r["arm"]) for r in rows}):
    group = [r for r in rows if (r["experiment"], r["task"], r["arm"]) == (experiment, task, arm)]
    steps = [_steps(r, "steps_to_target") for r in group]
    mean, low, high = _t_interval(steps)
    finals = [r["final"] for r in group if r["final"] is not None]
    curves = [r["mean_eval"] for r in group if r["mean_eval"] is not None]
    aggregate.append({
        "experiment": experiment, "task": task, "arm": arm, "sampler": group[0]["sampler"], "seeds": len(group),
        "reached": sum(r["steps_to_target"] is not None for r in group),
        "censored": sum(r["steps_to_target"] is None for r in group),
        "mean_steps": mean, "ci_low": low, "ci_high": high,
        "mean_steps_ma": float(np.mean([_steps(r, "steps_to_target_ma") for r in group])),
        "final": dict(zip(("mean", "ci_low", "ci_high"), _t_interval(finals))) if finals else None,
        "mean_eval": dict(zip(("mean", "ci_low", "ci_high"), _t_interval(curves))) if curves else None,
        "zero_variance": _mean_of(group, "zero_variance"),
        "zero_variance_drawn": _mean_of(group, "zero_variance_drawn"),
        "distinct": _mean_of(group, "distinct"),
        "baseline_arm": group[0]["baseline_arm"],
    })
  for a in aggregate:
    iid = [b for b in aggregate if (b["experiment"], b["task"], b["arm"]) == (a["experiment"], a["task"], a["baseline_arm"])]
    a["steps_saved_vs_iid"] = (1.0 - a["mean_steps"] / iid[0]["mean_steps"]) if iid and iid[0]["mean_steps"] else None
    a["paired_vs_iid"] = _paired_vs_iid(rows, a["experiment"], a["task"], a["arm"], a.pop("baseline_arm"))
  for r in rows:
    del r["baseline_arm"]
  return {"rows": rows, "aggregate": aggregate}


def _row(r: dict, target: float | None, metric: str) -> dict:
  """The summary row of one run (`build_summary`)."""
  config = {**r["config"], "sampler": r["sampler"]}
  train_records = [x for x in r["log"] if x.get("kind") == "train"]
  per_step = float(config["batch_size"] * config["group_size"])
  reached = steps_to_target(r["log"], target, metric) if target is not None else None
  reached_ma = steps_to_target(r["log"], target, metric, MOVING_AVERAGE) if target is not None else None
  samples = lambda step: None if step is None else samples_through(r["log"], step, per_step)  # noqa: E731
  band = (r.get("metrics") or {}).get("band")
  return {
      "task": r["task"], "sampler": r["sampler"], "seed": r["seed"],
      "steps_to_target": reached,
      "target": target, "target_metric": metric, "final": _final_metric(r, metric),
      "mean_eval": _mean_metric(r, metric),
      "num_steps": config["num_steps"], "eval_every": config["eval_every"],
      "zero_variance": float(np.mean([x["zero_variance"] for x in train_records])) if train_records else None,
      "distinct": float(np.mean([x["distinct"] for x in train_records])) if train_records else None,
      "init_checkpoint": config.get("init_checkpoint"),
      "init_step": r.get("metrics", {}).get("init", {}).get("step", config.get("init_step")),
      "results_dir": r["results_dir"],
      "experiment": r["experiment"], "arm": r["arm"], "baseline_arm": baseline_arm(config),
      "group_size": config["group_size"], "dynamic_sampling": bool(config.get("dynamic_sampling", False)),
      "steps_to_target_ma": reached_ma,
      "samples_to_target": samples(reached), "samples_to_target_ma": samples(reached_ma),
      "samples_drawn": samples_through(r["log"], config["num_steps"], per_step),
      "zero_variance_drawn": (float(np.mean([x.get("zero_variance_drawn", x["zero_variance"]) for x in train_records]))
                              if train_records else None),
      "band_share": band["share"] if band else None,
      "learning_rate": config.get("learning_rate"),
  }


def _steps(row: dict, field: str) -> float:
  """Steps to the target, num_steps when never reached (a lower bound)."""
  return row["num_steps"] if row[field] is None else row[field]


def _samples(row: dict, field: str) -> float:
  """Samples drawn to the target, the whole run's when never reached (a lower bound)."""
  return row["samples_drawn"] if row[field] is None else row[field]


def _mean_of(group: Sequence[dict], field: str) -> float:
  values = [r[field] for r in group if r[field] is not None]
  return float(np.mean(values)) if values else float("nan")


def _paired_vs_iid(rows: Sequence[dict], experiment: str, task: str, arm: str, baseline: str) -> dict | None:
  """Per-seed differences arm - i.i.d. arm over the seeds both ran (same prompts and eval keys).

  Steps of unreached runs count as num_steps (samples as the run's total), as in the aggregate.
  """
  if arm == baseline:
    return None
  by_seed = lambda name: {r["seed"]: r for r in rows  # noqa: E731
                          if (r["experiment"], r["task"], r["arm"]) == (experiment, task, name)}
  mine, iid = by_seed(arm), by_seed(baseline)
  seeds = sorted(set(mine) & set(iid))
  if not seeds:
    return None
  interval = lambda values: dict(zip(("mean", "ci_low", "ci_high"), _t_interval(values)))  # noqa: E731
  steps_ma = np.array([[_steps(mine[s], "steps_to_target_ma"), _steps(iid[s], "steps_to_target_ma")] for s in seeds])
  steps_ma_diffs = steps_ma[:, 0] - steps_ma[:, 1]
  paired = {
      "baseline": baseline, "seeds": len(seeds),
      "steps_diff": interval([_steps(mine[s], "steps_to_target") - _steps(iid[s], "steps_to_target") for s in seeds]),
      "steps_ma_diff": interval(steps_ma_diffs),
      "samples_ma_diff": interval(
          [_samples(mine[s], "samples_to_target_ma") - _samples(iid[s], "samples_to_target_ma") for s in seeds]),
      "steps_ma_ratio": _paired_ratio(steps_ma[:, 0], steps_ma[:, 1]),
      "steps_ma_power": paired_power(steps_ma_diffs, effect=(TARGET_RATIO - 1.0) * float(np.mean(steps_ma[:, 1]))),
  }
  curves = [(mine[s]["mean_eval"], iid[s]["mean_eval"]) for s in seeds]
  if all(a is not None and b is not None for a, b in curves):
    paired["mean_eval_diff"] = interval([a - b for a, b in curves])
    # Only the detectable difference: the power "at" a zero effect would be the test's 5% level.
    paired["mean_eval_detectable"] = paired_power([a - b for a, b in curves], effect=0.0)["detectable"]
  return paired


def _paired_ratio(mine: Sequence[float], iid: Sequence[float], num_resamples: int = 2000, level: float = 0.95,
                  seed: int = 0) -> dict:
  """{"mean", "ci_low", "ci_high"}: mean(mine) / mean(iid), and a percentile bootstrap interval that
  resamples the seeds (pairs kept together); nan bounds for one seed or a zero i.i.d. mean."""
  mine, iid = np.asarray(mine, np.float64), np.asarray(iid, np.float64)
  ratio = float(mine.mean() / iid.mean()) if iid.mean() else float("nan")
  if len(mine) < 2 or not iid.mean():
    return {"mean": ratio, "ci_low": float("nan"), "ci_high": float("nan")}
  index = np.random.default_rng(seed).integers(0, len(mine), size=(num_resamples, len(mine)))
  denominators = iid[index].mean(axis=1)
  ratios = mine[index].mean(axis=1)[denominators > 0] / denominators[denominators > 0]
  low, high = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
  return {"mean": ratio, "ci_low": float(low), "ci_high": float(high)}


def learning_rate_sweep(rows: Sequence[dict]) -> list[dict]:
  """The learning-rate sweeps among `build_summary`'s rows, and each arm's pick.

  A sweep run belongs to an experiment named "<experiment>_sweep_lr<lr>".
  Per (experiment, task, arm, learning rate) the mean over seeds of the area
  under the held-out curve ("mean_eval"); per (experiment, task, arm) the
  learning rate with the largest is "best" (the smaller on a tie).

  Returns:
    [{"experiment" (without the sweep suffix), "task", "arm",
    "learning_rate", "seeds", "mean_eval", "final", "best"}], sorted.
  """
  cells = {}
  for r in rows:
    if SWEEP_MARK in r["experiment"] and r["mean_eval"] is not None:
      key = (r["experiment"].split(SWEEP_MARK)[0], r["task"], r["arm"], r["learning_rate"])
      cells.setdefault(key, []).append(r)
  table = [{
      "experiment": experiment, "task": task, "arm": arm, "learning_rate": lr, "seeds": len(group),
      "mean_eval": float(np.mean([r["mean_eval"] for r in group])),
      "final": _mean_of(group, "final"), "best": False,
  } for (experiment, task, arm, lr), group in sorted(cells.items())]
  for key in {(t["experiment"], t["task"], t["arm"]) for t in table}:
    candidates = [t for t in table if (t["experiment"], t["task"], t["arm"]) == key]
    max(candidates, key=lambda t: (t["mean_eval"], -t["learning_rate"]))["best"] = True
  return table


def write_summary(summary: dict, output_dir: str) -> dict[str, str]:
  """Writes `build_summary`'s rows to output_dir/summary.json (a list, one row per run), its
  aggregate to output_dir/summary_by_sampler.json and, when the rows hold a sweep,
  `learning_rate_sweep` to output_dir/summary_sweep.json; returns the paths by name."""
  paths = {"summary": os.path.join(output_dir, SUMMARY_NAME), "summary_by_sampler": os.path.join(output_dir, AGGREGATE_NAME)}
  files.write_json(summary["rows"], paths["summary"])
  files.write_json(summary["aggregate"], paths["summary_by_sampler"])
  sweep = learning_rate_sweep(summary["rows"])
  if sweep:
    paths["summary_sweep"] = os.path.join(output_dir, SWEEP_NAME)
    files.write_json(sweep, paths["summary_sweep"])
  return paths


def format_summary(summary: dict) -> str:
  """The aggregate rows as a table ("paired diff": steps minus i.i.d.'s, per seed)."""
  lines = [f"{'experiment':<10} {'task':<12} {'arm':<17} {'seeds':>5} {'reached':>7} {'steps (95% CI)':>24} "
           f"{'saved':>7} {'paired diff (95% CI)':>22} {'final':>6} {'mean eval':>9} {'zero-var':>8} {'distinct':>8}"]
  for a in summary["aggregate"]:
    saved = "-" if a["steps_saved_vs_iid"] is None else f"{a['steps_saved_vs_iid']:+.0%}"
    diff = (a.get("paired_vs_iid") or {}).get("steps_diff")
    diff = "-" if diff is None else f"{diff['mean']:+.1f} [{diff['ci_low']:+.1f}, {diff['ci_high']:+.1f}]"
    lines.append(
        f"{a['experiment']:<10} {a['task']:<12} {a['arm']:<17} {a['seeds']:>5} {a['reached']:>7} "
        f"{a['mean_steps']:>8.1f} [{a['ci_low']:>6.1f}, {a['ci_high']:>6.1f}] {saved:>7} {diff:>22} "
        f"{_fmt(a['final']):>6} {_fmt(a['mean_eval']):>9} {a['zero_variance']:>8.3f} {a['distinct']:>8.2f}"
    )
  return "\n".join(lines)


def format_sweep(sweep: Sequence[dict]) -> str:
  """`learning_rate_sweep` as a table; "*" marks each arm's pick."""
  lines = ["learning-rate sweep: area under the held-out curve (mean over seeds); * = picked"]
  for t in sweep:
    lines.append(f"{t['experiment']:<10} {t['task']:<12} {t['arm']:<18} lr {t['learning_rate']:<8.0e} "
                 f"seeds {t['seeds']} {t['mean_eval']:.4f}{' *' if t['best'] else ''}")
  return "\n".join(lines)


def _fmt(interval) -> str:
  return "-" if interval is None else f"{interval['mean']:.3f}"
