"""The pass@k comparison table: unbiased estimates, intervals, bound, savings.

Input is, per sampler, which samples were correct: bool[P, R, n] (problems x
independent groups x group size). Output is a list of rows, one per (sampler,
k), with the fields the project's result files use.
"""

from __future__ import annotations

import numpy as np

from qmotto import metrics
from qmotto import sampling


def per_problem_pass_at_k(
    sampler: str | sampling.Sampler, groups: dict[int, np.ndarray], ks: list[int]
) -> np.ndarray:
  """float[P, K]: unbiased per-problem pass@k of one sampler at every k.

  Args:
    sampler: a sampler name or a `qmotto.Sampler`.
    groups: group size -> bool[P, R, size], the sampler's correctness at that
      group size. For each k the estimate uses a group size that allows k as
      a valid sub-group (the group of size k itself, else the largest one).
    ks: the k values.
  """
  sampler = sampling.get_sampler(sampler)
  out = []
  for k in ks:
    sizes = [n for n in sorted(groups, reverse=True) if k in metrics.allowed_subgroup_sizes(sampler, n)]
    if not sizes:
      raise ValueError(
          f"sampler {sampler.name!r}: no group size among {sorted(groups)} allows k={k}; sample "
          f"groups of size {k} (allowed sub-groups: "
          f"{ {n: metrics.allowed_subgroup_sizes(sampler, n) for n in groups} })."
      )
    out.append(metrics.pass_at_k(groups[k if k in sizes else sizes[0]], sampler=sampler, k=k))
  return np.stack(out, axis=-1)


def passk_rows(
    correct: dict[str, np.ndarray | dict[int, np.ndarray]],
    ks: list[int],
    *,
    answer_probs: np.ndarray | None = None,
    distinct: dict[str, np.ndarray] | None = None,
    seed: int,
    num_resamples: int = 1000,
    baseline: str = "iid",
) -> list[dict]:
  """Rows of the pass@k comparison.

  Args:
    correct: sampler name -> bool[P, R, n], or -> {group size: bool[P, R, size]}
      for samplers that need separate groups for some k (e.g. stratified has
      no valid sub-groups). Must contain `baseline`.
    ks: the k values to report, each allowed for every sampler (powers of two
      up to n work for all built-in samplers).
    answer_probs: optional float[P] exact per-problem pass@1; by default it is
      estimated from the baseline's samples (all R n of them).
    distinct: optional sampler name -> float[P, R] distinct answers per group.
    seed: seed of the bootstrap over problems.
    num_resamples: bootstrap resamples.
    baseline: the i.i.d. sampler the savings are measured against.

  Returns:
    list of dicts with sampler, k, pass_at_k, ci_low, ci_high, union_bound,
    samples_saved, saved_low, saved_high (and distinct_per_group at k = n).
  """
  if baseline not in correct:
    raise ValueError(f"correct must include the baseline sampler {baseline!r}; got {sorted(correct)}.")
  correct = {
      name: c if isinstance(c, dict) else {np.shape(c)[-1]: c} for name, c in correct.items()
  }
  if answer_probs is None:
    answer_probs = np.mean(
        [np.asarray(c, np.float64).mean(axis=(1, 2)) for c in correct[baseline].values()], axis=0
    )
  per_problem = {name: per_problem_pass_at_k(name, groups, ks) for name, groups in correct.items()}
  rows = []
  for name, values in per_problem.items():
    ci = metrics.bootstrap_ci(values, seed=seed, num_resamples=num_resamples)
    group_size = max(correct[name])
    for j, k in enumerate(ks):
      saved = metrics.bootstrap_samples_saved(
          ks, values, per_problem[baseline], k, seed=seed, num_resamples=num_resamples
      )
      row = dict(
          sampler=name,
          k=int(k),
          pass_at_k=float(ci.mean[j]),
          ci_low=float(ci.low[j]),
          ci_high=float(ci.high[j]),
          union_bound=float(metrics.union_bound(answer_probs, k)),
          samples_saved=float(saved.estimate),
          saved_low=float(saved.low),
          saved_high=float(saved.high),
      )
      if distinct is not None and name in distinct and k == group_size:
        row["distinct_per_group"] = float(np.mean(distinct[name]))
      rows.append(row)
  return rows


def _percent(x: float) -> str:
  if np.isnan(x):
    return "n/a"
  if np.isinf(x):
    return "-inf" if x < 0 else "+inf"
  return f"{x:+.0%}"


def format_table(rows: list[dict], ks_shown: list[int] | None = None) -> str:
  """A plain-text table of `passk_rows` output."""
  header = f"{'sampler':<12} {'k':>4} {'pass@k':>7} {'95% CI':>17} {'bound':>7} {'saved vs iid':>24} {'distinct':>8}"
  lines = [header, "-" * len(header)]
  for r in rows:
    if ks_shown is not None and r["k"] not in ks_shown:
      continue
    saved = r["samples_saved"]
    saved_text = (
        "n/a"
        if np.isnan(saved)
        else f"{_percent(saved)} [{_percent(r['saved_low'])}, {_percent(r['saved_high'])}]"
    )
    if r["sampler"] == "iid":
      saved_text = "-"
    distinct = f"{r['distinct_per_group']:.2f}" if "distinct_per_group" in r else ""
    lines.append(
        f"{r['sampler']:<12} {r['k']:>4} {r['pass_at_k']:>7.3f} "
        f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        + f" {r['union_bound']:>7.3f} {saved_text:>24} {distinct:>8}"
    )
  return "\n".join(lines)


def savings_markdown(rows: list[dict], ks: list[int], baseline: str = "iid") -> str:
  """A Markdown table: per (task, model) and coupled sampler, samples saved vs
  the baseline at each k in `ks`, with intervals, beside the baseline's pass@k.

  `rows` are result rows as in results/passk/summary.json (fields task, model,
  sampler, k, pass_at_k, samples_saved, saved_low, saved_high).
  """
  def saved(row):
    if row is None or row.get("samples_saved") is None or not np.isfinite(row["samples_saved"]):
      return "n/a"
    return f"{_percent(row['samples_saved'])} [{_percent(row['saved_low'])}, {_percent(row['saved_high'])}]"

  index = {(r["task"], r["model"], r["sampler"], r["k"]): r for r in rows}
  header = ["task", "model", "problems", "sampler"]
  for k in ks:
    header += [f"iid pass@{k}", f"saved at k={k}"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  groups = sorted({(r["task"], r["model"]) for r in rows})
  for task, model in groups:
    samplers = sorted({r["sampler"] for r in rows if (r["task"], r["model"]) == (task, model)} - {baseline})
    for name in samplers:
      first = next(r for r in rows if (r["task"], r["model"], r["sampler"]) == (task, model, name))
      cells = [task, model, str(first.get("num_problems", "")), name]
      for k in ks:
        base = index.get((task, model, baseline, k))
        cells += ["n/a" if base is None else f"{base['pass_at_k']:.3f}", saved(index.get((task, model, name, k)))]
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)
