"""GRPO results across runs: the result files, steps to a target, the comparison with i.i.d., the table.

    summary = build_summary(["results/grpo/maze_experiment", "results/grpo/arc_1d_experiment"])
    write_summary(summary, "results/grpo")   # summary.json, summary_by_sampler.json
    print(format_summary(summary))

A run's result file (`grpo.run`) is <output_dir>/<task>_<sampler>_seed<seed>.json
(`result_name`), kind RESULT_KIND, holding the final metrics, the whole log,
the config and the command. The summary asks how many steps each sampler
needs to reach a held-out target (`steps_to_target`): per run, per (task,
sampler) with t-intervals over seeds, and paired with the i.i.d. run of the
same seed, which saw the same prompts and evaluation keys.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from qmotto.utils import files

RESULT_KIND = "qmotto.grpo"
SUMMARY_NAME = "summary.json"  # the per-run rows (a list).
AGGREGATE_NAME = "summary_by_sampler.json"  # the per-(task, sampler) rows.
BASELINE_SAMPLER = "iid"  # the sampler every other one is compared with.


def result_name(task: str, sampler: str, seed: int) -> str:
  """The file name (without .json) of a run's result: <task>_<sampler>_seed<seed>."""
  return f"{task}_{sampler}_seed{seed}"


def load_runs(output_dirs: str | Sequence[str]) -> list[dict]:
  """Every GRPO result file in one folder or several, sorted by (task, sampler, seed).

  Each result gets "results_dir", the folder it was read from.

  Raises:
    ValueError: two folders hold a result of the same (task, sampler, seed).
  """
  dirs = [output_dirs] if isinstance(output_dirs, str) else list(output_dirs)
  results, seen = [], {}
  for directory in dirs:
    for path, result in files.load_results(directory, RESULT_KIND, skip=(SUMMARY_NAME, AGGREGATE_NAME)):
      run = (result["task"], result["sampler"], result["seed"])
      if run in seen:
        raise ValueError(f"{path} and {seen[run]} are both results of (task, sampler, seed) = {run}.")
      seen[run] = path
      results.append({**result, "results_dir": directory})
  return sorted(results, key=lambda r: (r["task"], r["sampler"], r["seed"]))


def steps_to_target(records: Sequence[dict], target: float, metric: str = "pass@1") -> int | None:
  """The first eval step whose `metric` reaches `target` (None if never)."""
  for record in sorted((r for r in records if r.get("kind") == "eval"), key=lambda r: r["step"]):
    if record.get(metric) is not None and record[metric] >= target:
      return int(record["step"])
  return None


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


def build_summary(output_dirs: str | Sequence[str]) -> dict:
  """Steps to a target held-out metric per (task, sampler, seed), and per (task, sampler) with intervals.

  `output_dirs`: one results folder or several (`load_runs`), e.g. one
  experiment per task family.

  The target of a task is its runs' `config.target` when > 0; otherwise the
  mean final `target_metric` of its i.i.d. runs (the paper's question: how
  many steps does a sampler need to reach the accuracy i.i.d. GRPO ends
  with). A run that never reaches it has steps_to_target null.

  Returns:
    {"rows": [{"task", "sampler", "seed", "steps_to_target", "target",
    "target_metric", "final", "mean_eval" (mean of the metric over the
    evaluations after step 0), "num_steps", "eval_every", "zero_variance"
    (mean over the run), "distinct" (mean), "init_checkpoint", "init_step"
    (the starting policy), "results_dir"}], "aggregate": [{"task",
    "sampler", "seeds", "reached", "mean_steps", "ci_low", "ci_high"
    (t-interval over seeds; unreached runs count as num_steps, a lower
    bound, and "censored" says how many), "final" and "mean_eval"
    ({"mean", "ci_low", "ci_high"} over seeds), "zero_variance",
    "distinct", "steps_saved_vs_iid" (1 - mean steps / i.i.d. mean
    steps), "paired_vs_iid" (None for i.i.d.; else over the seeds both
    samplers ran, which share prompts and evaluation keys: {"seeds",
    "steps_diff", "mean_eval_diff"}, each {"mean", "ci_low", "ci_high"} of
    sampler minus i.i.d.)}]}.
  """
  results = load_runs(output_dirs)
  rows = []
  for task in sorted({r["task"] for r in results}):
    runs = [r for r in results if r["task"] == task]
    metric = runs[0]["config"].get("target_metric", "pass@1")
    target = float(runs[0]["config"].get("target", 0.0))
    if target <= 0:
      finals = [_final_metric(r, metric) for r in runs if r["sampler"] == BASELINE_SAMPLER]
      finals = [x for x in finals if x is not None]
      target = float(np.mean(finals)) if finals else None
    if len({(r["config"].get("target", 0.0), r["config"].get("target_metric", "pass@1")) for r in runs}) > 1:
      raise ValueError(f"the {task} runs were given different config.target / target_metric values.")
    for r in runs:
      train_records = [x for x in r["log"] if x.get("kind") == "train"]
      rows.append({
          "task": task, "sampler": r["sampler"], "seed": r["seed"],
          "steps_to_target": steps_to_target(r["log"], target, metric) if target is not None else None,
          "target": target, "target_metric": metric, "final": _final_metric(r, metric),
          "mean_eval": _mean_metric(r, metric),
          "num_steps": r["config"]["num_steps"], "eval_every": r["config"]["eval_every"],
          "zero_variance": float(np.mean([x["zero_variance"] for x in train_records])) if train_records else None,
          "distinct": float(np.mean([x["distinct"] for x in train_records])) if train_records else None,
          "init_checkpoint": r["config"].get("init_checkpoint"),
          "init_step": r.get("metrics", {}).get("init", {}).get("step", r["config"].get("init_step")),
          "results_dir": r["results_dir"],
      })
  aggregate = []
  for task, sampler in sorted({(r["task"], r["sampler"]) for r in rows}):
    group = [r for r in rows if r["task"] == task and r["sampler"] == sampler]
    steps = [r["steps_to_target"] if r["steps_to_target"] is not None else r["num_steps"] for r in group]
    mean, low, high = _t_interval(steps)
    finals = [r["final"] for r in group if r["final"] is not None]
    curves = [r["mean_eval"] for r in group if r["mean_eval"] is not None]
    aggregate.append({
        "task": task, "sampler": sampler, "seeds": len(group),
        "reached": sum(r["steps_to_target"] is not None for r in group),
        "censored": sum(r["steps_to_target"] is None for r in group),
        "mean_steps": mean, "ci_low": low, "ci_high": high,
        "final": dict(zip(("mean", "ci_low", "ci_high"), _t_interval(finals))) if finals else None,
        "mean_eval": dict(zip(("mean", "ci_low", "ci_high"), _t_interval(curves))) if curves else None,
        "zero_variance": float(np.mean([r["zero_variance"] for r in group if r["zero_variance"] is not None] or [np.nan])),
        "distinct": float(np.mean([r["distinct"] for r in group if r["distinct"] is not None] or [np.nan])),
    })
  for a in aggregate:
    iid = [b for b in aggregate if b["task"] == a["task"] and b["sampler"] == BASELINE_SAMPLER]
    a["steps_saved_vs_iid"] = (1.0 - a["mean_steps"] / iid[0]["mean_steps"]) if iid and iid[0]["mean_steps"] else None
    a["paired_vs_iid"] = _paired_vs_iid(rows, a["task"], a["sampler"])
  return {"rows": rows, "aggregate": aggregate}


def _paired_vs_iid(rows: Sequence[dict], task: str, sampler: str) -> dict | None:
  """Per-seed differences sampler - i.i.d. over the seeds both ran (same prompts and eval keys).

  Steps of unreached runs count as num_steps, as in the aggregate.
  """
  if sampler == BASELINE_SAMPLER:
    return None
  by_seed = lambda name: {r["seed"]: r for r in rows if r["task"] == task and r["sampler"] == name}  # noqa: E731
  mine, iid = by_seed(sampler), by_seed(BASELINE_SAMPLER)
  seeds = sorted(set(mine) & set(iid))
  if not seeds:
    return None
  steps = lambda r: r["num_steps"] if r["steps_to_target"] is None else r["steps_to_target"]  # noqa: E731
  interval = lambda values: dict(zip(("mean", "ci_low", "ci_high"), _t_interval(values)))  # noqa: E731
  paired = {"seeds": len(seeds), "steps_diff": interval([steps(mine[s]) - steps(iid[s]) for s in seeds])}
  curves = [(mine[s]["mean_eval"], iid[s]["mean_eval"]) for s in seeds]
  if all(a is not None and b is not None for a, b in curves):
    paired["mean_eval_diff"] = interval([a - b for a, b in curves])
  return paired


def write_summary(summary: dict, output_dir: str) -> dict[str, str]:
  """Writes `build_summary`'s rows to output_dir/summary.json (a list, one row per run) and its
  aggregate to output_dir/summary_by_sampler.json; returns {"summary", "summary_by_sampler"} paths."""
  paths = {"summary": os.path.join(output_dir, SUMMARY_NAME), "summary_by_sampler": os.path.join(output_dir, AGGREGATE_NAME)}
  files.write_json(summary["rows"], paths["summary"])
  files.write_json(summary["aggregate"], paths["summary_by_sampler"])
  return paths


def format_summary(summary: dict) -> str:
  """The aggregate rows as a table ("paired diff": steps minus i.i.d.'s, per seed)."""
  lines = [f"{'task':<12} {'sampler':<11} {'seeds':>5} {'reached':>7} {'steps (95% CI)':>24} {'saved':>7} "
           f"{'paired diff (95% CI)':>22} {'final':>6} {'mean eval':>9} {'zero-var':>8} {'distinct':>8}"]
  for a in summary["aggregate"]:
    saved = "-" if a["steps_saved_vs_iid"] is None else f"{a['steps_saved_vs_iid']:+.0%}"
    diff = (a.get("paired_vs_iid") or {}).get("steps_diff")
    diff = "-" if diff is None else f"{diff['mean']:+.1f} [{diff['ci_low']:+.1f}, {diff['ci_high']:+.1f}]"
    lines.append(
        f"{a['task']:<12} {a['sampler']:<11} {a['seeds']:>5} {a['reached']:>7} "
        f"{a['mean_steps']:>8.1f} [{a['ci_low']:>6.1f}, {a['ci_high']:>6.1f}] {saved:>7} {diff:>22} "
        f"{_fmt(a['final']):>6} {_fmt(a['mean_eval']):>9} {a['zero_variance']:>8.3f} {a['distinct']:>8.2f}"
    )
  return "\n".join(lines)


def _fmt(interval) -> str:
  return "-" if interval is None else f"{interval['mean']:.3f}"
