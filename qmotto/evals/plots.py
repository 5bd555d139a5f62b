"""Plots of pass@k results (matplotlib's Agg canvas: no display, no global backend).

`plot_passk(result, path)` draws, from the rows of `qmotto.evals.passk.run` (or
`report.passk_rows` with task/model fields): left, pass@k against k per
sampler with its bootstrap interval over problems as a band, and the union
bound mean_i min(1, k p_i) as a dashed line (a plug-in, biased low when p_i
is estimated) with its bias-aware interval as a grey band; right, the samples
saved against i.i.d. at each k with its interval (points where it is
undefined, NaN, are left out). The title states the intervals' level.
"""

from __future__ import annotations

import numpy as np

from qmotto.evals import report
from qmotto.utils import files

# Lower ends of savings intervals can be -inf (the sampler never reaches the
# target in some resamples); they are drawn at this floor.
SAVED_FLOOR = -1.0


def _by_sampler(rows: list[dict]) -> dict[str, list[dict]]:
  out: dict[str, list[dict]] = {}
  for row in rows:
    out.setdefault(row["sampler"], []).append(row)
  return {name: sorted(rs, key=lambda r: r["k"]) for name, rs in out.items()}


def _title(result: dict) -> str:
  """Two lines: the run (task, model, what each sampler drew, temperature), and the bands' meaning."""
  parts = [f"{result.get('task', '?')} / {result.get('model', '?')}"]
  if "num_problems" in result:
    parts.append(f"{result['num_problems']} problems")
  drawn = report.drawn_per_sampler(result["rows"])
  if drawn:
    per_sampler = ", ".join(f"{name} " + " + ".join(f"{r}x{n}" for _, r, n in d) for name, d in drawn.items())
    parts.append(f"groups x size per problem: {per_sampler}")
  config = result.get("config") or {}
  if "temperature" in config:
    parts.append(f"T={config['temperature']}")
  return ", ".join(parts) + "\n" + band_text(result["rows"])


def band_text(rows: list[dict]) -> str:
  """What the bands are, e.g. "bands: 95% bootstrap intervals over problems"."""
  return f"bands: {report.level_text(rows)} bootstrap intervals over problems"


def bound_label(rows: list[dict]) -> str:
  """The legend entry of the union bound: what it is and which way its estimate is biased."""
  p_from = {r.get("union_bound_p_from") for r in rows}
  if p_from == {"exact"}:
    return "union bound mean min(1, k p_i), exact p_i"
  if p_from == {"all_samples"}:
    return "union bound (plug-in from all samples, biased low;\nband up to its bias-corrected upper end)"
  return "union bound (plug-in from i.i.d. samples, biased low)"


def figure_passk(result: dict, *, title: str | None = None):
  """A matplotlib Figure of the pass@k curves and samples saved (see the module docstring).

  Args:
    result: a dict with "rows" (sampler, k, pass_at_k, ci_low, ci_high,
      union_bound, samples_saved, saved_low, saved_high; optionally
      union_bound_low/high/p_from, ci_level) and optionally task, model,
      num_problems, config (for the title).
    title: overrides the default title.
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  rows = result["rows"]
  if not rows:
    raise ValueError("result['rows'] is empty: nothing to plot.")
  by_sampler = _by_sampler(rows)
  fig = Figure(figsize=(11, 4.2), layout="constrained")
  ax_pass, ax_saved = fig.subplots(1, 2)
  colors = {name: f"C{i}" for i, name in enumerate(by_sampler)}
  bound_rows = next(iter(by_sampler.values()))
  ks = np.array([r["k"] for r in bound_rows])
  ax_pass.plot(ks, [r["union_bound"] for r in bound_rows], "k--", lw=1.2, label=bound_label(bound_rows))
  if all(r.get("union_bound_low") is not None for r in bound_rows):
    ax_pass.fill_between(ks, [r["union_bound_low"] for r in bound_rows], [r["union_bound_high"] for r in bound_rows],
                         color="0.5", alpha=0.15, lw=0)
  for name, rs in by_sampler.items():
    k = np.array([r["k"] for r in rs])
    ax_pass.plot(k, [r["pass_at_k"] for r in rs], "o-", ms=3, color=colors[name], label=name)
    ax_pass.fill_between(k, [r["ci_low"] for r in rs], [r["ci_high"] for r in rs], color=colors[name], alpha=0.18)
  ax_pass.set_xscale("log", base=2)
  ax_pass.set_xticks(ks, [str(k) for k in ks])
  ax_pass.set_xlabel("k (samples per problem)")
  ax_pass.set_ylabel("pass@k")
  ax_pass.set_ylim(0, 1.02)
  ax_pass.grid(alpha=0.3)
  ax_pass.legend(fontsize=7)

  ax_saved.axhline(0.0, color="k", lw=0.8)
  offsets = np.linspace(-0.06, 0.06, max(1, len(by_sampler) - 1))
  coupled = [name for name in by_sampler if name != "iid"]
  shown = [0.0, 0.5]
  clipped = False
  for offset, name in zip(offsets, coupled):
    rs = by_sampler[name]
    k = np.array([r["k"] for r in rs], np.float64) * 2.0**offset  # side by side on the log axis.
    est = np.array([r["samples_saved"] for r in rs], np.float64)
    low = np.maximum(np.array([r["saved_low"] for r in rs], np.float64), SAVED_FLOOR)
    high = np.maximum(np.array([r["saved_high"] for r in rs], np.float64), SAVED_FLOOR)
    ok = np.isfinite(est)
    clipped |= bool(np.any(np.array([r["saved_low"] for r in rs], np.float64)[ok] < SAVED_FLOOR))
    shown += list(low[ok]) + list(high[ok])
    err = np.stack([np.clip(est - low, 0, None), np.clip(high - est, 0, None)])
    ax_saved.errorbar(k[ok], est[ok], yerr=err[:, ok], fmt="o-", ms=3, capsize=2, color=colors[name], label=name)
  ax_saved.set_xscale("log", base=2)
  ax_saved.set_xticks(ks, [str(k) for k in ks])
  ax_saved.set_xlabel("k (i.i.d. budget)")
  ax_saved.set_ylabel("samples saved vs i.i.d. (1 - k'/k)")
  ax_saved.set_ylim(min(shown) - 0.05, min(1.0, max(shown) + 0.05))
  if clipped:
    ax_saved.text(0.01, 0.01, f"interval ends below {SAVED_FLOOR:+.0%} drawn at {SAVED_FLOOR:+.0%}",
                  transform=ax_saved.transAxes, fontsize=7, va="bottom")
  ax_saved.grid(alpha=0.3)
  if coupled:
    ax_saved.legend(fontsize=8)
  fig.suptitle(title if title is not None else _title(result), fontsize=10)
  return fig


def plot_passk(result: dict, path: str, *, title: str | None = None, dpi: int = 120) -> str:
  """Writes `figure_passk(result)` as a PNG to `path` atomically; returns path."""
  fig = figure_passk(result, title=title)
  return files.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi), mode="wb")
