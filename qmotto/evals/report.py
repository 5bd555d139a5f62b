"""The pass@k comparison table: unbiased estimates, intervals, bound, savings.

Input is, per sampler, which samples were correct: bool[P, R, n] (problems x
independent groups x group size). Output is a list of rows, one per (sampler,
k), with the fields the project's result files use.
"""

from __future__ import annotations

import textwrap

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


def pooled_counts(correct: dict[str, np.ndarray | dict[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
  """(correct samples int[P], samples int[P]) per problem, over every sampler and group size.

  Every sample of an exact sampler (i.i.d. or coupled) is a draw from the
  model, so c / n is an unbiased estimate of the problem's pass@1 p_i, with
  less variance than the i.i.d. samples alone.

  Args:
    correct: sampler name -> bool[P, R, n], or -> {group size: bool[P, R, size]}.
  """
  arrays = [a for c in correct.values() for a in (c.values() if isinstance(c, dict) else [c])]
  if not arrays:
    raise ValueError("correct must hold at least one sampler's samples, got none.")
  num_correct = sum(np.asarray(a).sum(axis=(1, 2), dtype=np.int64) for a in arrays)
  num_samples = sum(np.full(np.shape(a)[0], np.shape(a)[1] * np.shape(a)[2], np.int64) for a in arrays)
  return num_correct, num_samples


def _bound_fields(correct, ks, answer_probs, *, seed: int, num_resamples: int, level: float) -> list[dict]:
  """Per k: union_bound (plug-in), union_bound_corrected, _low, _high, _p_from, _samples."""
  if answer_probs is not None:
    # Exact p_i: the bound needs no estimate of p; the interval is over problems only.
    ci = metrics.bootstrap_ci(
        metrics.union_bound_per_problem(answer_probs, ks), seed=seed, num_resamples=num_resamples, level=level
    )
    estimate, corrected, low, high = ci.mean, ci.mean, ci.low, ci.high
    p_from, samples = "exact", None
  else:
    num_correct, num_samples = pooled_counts(correct)
    estimate, corrected, low, high = metrics.bootstrap_union_bound(
        num_correct, num_samples, ks, seed=seed, num_resamples=num_resamples, level=level
    )
    p_from, samples = "all_samples", int(num_samples.min())
  return [
      dict(
          union_bound=float(estimate[j]),
          union_bound_corrected=float(corrected[j]),
          union_bound_low=float(low[j]),
          union_bound_high=float(high[j]),
          union_bound_p_from=p_from,
          union_bound_samples=samples,
      )
      for j in range(len(ks))
  ]


def passk_rows(
    correct: dict[str, np.ndarray | dict[int, np.ndarray]],
    ks: list[int],
    *,
    answer_probs: np.ndarray | None = None,
    distinct: dict[str, np.ndarray] | None = None,
    seed: int,
    num_resamples: int = 1000,
    baseline: str = "iid",
    level: float = 0.95,
) -> list[dict]:
  """Rows of the pass@k comparison.

  Args:
    correct: sampler name -> bool[P, R, n], or -> {group size: bool[P, R, size]}
      for samplers that need separate groups for some k (e.g. stratified has
      no valid sub-groups). Must contain `baseline`.
    ks: the k values to report, each allowed for every sampler (powers of two
      up to n work for all built-in samplers).
    answer_probs: optional float[P] EXACT per-problem pass@1 (e.g. the toy
      suite's). By default p_i is estimated from all samples of all samplers
      (`pooled_counts`), and the union bound gets `metrics.bootstrap_union_bound`'s
      bias-aware interval.
    distinct: optional sampler name -> float[P, R] distinct answers per group.
    seed: seed of the bootstrap over problems.
    num_resamples: bootstrap resamples.
    baseline: the i.i.d. sampler the savings are measured against.
    level: confidence level of every interval.

  Returns:
    list of dicts with sampler, k, pass_at_k, ci_low, ci_high, ci_level,
    union_bound (the plug-in mean_i min(1, k p_i); biased low when p_i is
    estimated), union_bound_corrected, union_bound_low, union_bound_high,
    union_bound_p_from ("all_samples" or "exact"), union_bound_samples
    (samples per problem behind p_i, None when exact), samples_saved,
    saved_low, saved_high (and distinct_per_group at k = n).
  """
  if baseline not in correct:
    raise ValueError(f"correct must include the baseline sampler {baseline!r}; got {sorted(correct)}.")
  correct = {
      name: c if isinstance(c, dict) else {np.shape(c)[-1]: c} for name, c in correct.items()
  }
  bounds = _bound_fields(correct, ks, answer_probs, seed=seed, num_resamples=num_resamples, level=level)
  per_problem = {name: per_problem_pass_at_k(name, groups, ks) for name, groups in correct.items()}
  rows = []
  for name, values in per_problem.items():
    ci = metrics.bootstrap_ci(values, seed=seed, num_resamples=num_resamples, level=level)
    group_size = max(correct[name])
    for j, k in enumerate(ks):
      saved = metrics.bootstrap_samples_saved(
          ks, values, per_problem[baseline], k, seed=seed, num_resamples=num_resamples, level=level
      )
      row = dict(
          sampler=name,
          k=int(k),
          pass_at_k=float(ci.mean[j]),
          ci_low=float(ci.low[j]),
          ci_high=float(ci.high[j]),
          ci_level=float(level),
          **bounds[j],
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


def level_text(rows: list[dict]) -> str:
  """The rows' confidence level as a percentage, e.g. "95%" (rows without ci_level: 95%)."""
  levels = {float(r.get("ci_level", 0.95)) for r in rows} or {0.95}
  return "/".join(f"{100 * level:g}%" for level in sorted(levels))


def bound_note(rows: list[dict]) -> str:
  """The table's note on what the rows' union bound is, how p_i was estimated and which way it errs."""
  level = level_text(rows)
  p_from = {r.get("union_bound_p_from") for r in rows}
  if p_from == {"exact"}:
    return (f"bound: union bound mean_i min(1, k p_i), the pass@k ceiling of any exact sampler, with the exact "
            f"p_i; {level} bootstrap interval over problems.")
  if p_from == {"all_samples"}:
    samples = min(r["union_bound_samples"] for r in rows)
    samplers = sorted({r["sampler"] for r in rows})
    return (f"bound: union bound mean_i min(1, k p_i), the pass@k ceiling of any exact sampler, with p_i "
            f"estimated from all {samples} samples per problem ({', '.join(samplers)}: each an exact draw). The "
            f"point is a plug-in, biased low (min is concave); its {level} interval over problems runs from the "
            f"plug-in's lower end to a bias-corrected upper end, so only a pass@k above that upper end would "
            f"beat the ceiling.")
  return ("bound: union bound mean_i min(1, k p_i), a plug-in with p_i from the i.i.d. samples only (a result "
          "of an older version): biased low, so exact samplers can appear to beat it.")


def format_table(rows: list[dict], ks_shown: list[int] | None = None, *, notes: bool = True) -> str:
  """A plain-text table of `passk_rows` output, with a footnote on the bound (if notes).

  Rows of result files from before the bound had an interval show an empty
  interval cell.
  """
  level = level_text(rows)
  header = (
      f"{'sampler':<12} {'k':>4} {'pass@k':>7} {level + ' CI':>17} {'bound':>7} {'bound ' + level + ' CI':>17} "
      f"{'saved vs iid':>24} {'distinct':>8}"
  )
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
    bound_ci = (
        f"[{r['union_bound_low']:.3f}, {r['union_bound_high']:.3f}]"
        if r.get("union_bound_low") is not None and r.get("union_bound_high") is not None
        else ""
    )
    lines.append(
        f"{r['sampler']:<12} {r['k']:>4} {r['pass_at_k']:>7.3f} "
        f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        + f" {r['union_bound']:>7.3f} {bound_ci:>17} {saved_text:>24} {distinct:>8}"
    )
  if notes and rows:
    lines.append("")
    for note in (f"pass@k: unbiased for each sampler; {level} bootstrap intervals over problems.", bound_note(rows)):
      lines.append(textwrap.fill(note, width=len(header)))
  return "\n".join(lines)


def drawn_per_sampler(rows: list[dict]) -> dict[str, list[tuple[int, int, int]]]:
  """Per sampler, what it drew: [(problems, independent groups per problem, group size), ...].

  Read from the rows (num_problems, replications, group_size), largest group
  first; a sampler that needed separate groups for some k (stratified) has
  one entry per group size. Rows without those fields (e.g. the toy
  runner's) give {}.
  """
  out = {}
  for name in dict.fromkeys(r["sampler"] for r in rows):
    mine = [r for r in rows if r["sampler"] == name]
    if not all(r.get(f) is not None for r in mine for f in ("num_problems", "replications", "group_size")):
      return {}
    sizes = sorted({int(r["group_size"]) for r in mine}, reverse=True)
    out[name] = [(int(mine[0]["num_problems"]), int(mine[0]["replications"]), size) for size in sizes]
  return out


def drawn_text(rows: list[dict]) -> str:
  """What each sampler drew: "iid 128 x 2 x 64, lattice 128 x 1 x 64, stratified 128 x 1 x 64 + 128 x 1 x 2".

  Each entry is problems x independent groups per problem x group size (see
  `drawn_per_sampler`); "" when the rows do not say.
  """
  return ", ".join(
      f"{name} " + " + ".join(f"{p} x {r} x {n}" for p, r, n in drawn)
      for name, drawn in drawn_per_sampler(rows).items()
  )


def format_header(result: dict) -> str:
  """The lines above the table: the run, and per sampler what was drawn.

  Args:
    result: a result of `qmotto.evals.passk.run` (task, model, style,
      num_problems, mean_pass_at_1, seconds, rows).
  """
  lines = [
      f"{result['task']} / {result['model']} ({result['style']}): {result['num_problems']} problems, "
      f"mean pass@1 {result['mean_pass_at_1']:.3f} (all samples); {result['seconds']:.0f}s."
  ]
  drawn = drawn_text(result["rows"])
  if drawn:
    lines.append(f"drawn (problems x groups x group size): {drawn}.")
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
