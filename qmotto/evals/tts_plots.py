"""The test-time-scaling figure (matplotlib's Agg canvas: no display, no global backend).

`figure_tts(result)` draws, from a result of `qmotto.evals.tts.run`:
  * one panel per metric at k (pass@k, maj@k, weighted@k, bon@k): accuracy
    against k (samples per problem) per sampler, i.i.d. dashed, with its
    bootstrap interval over problems as a band;
  * the first-success panel: per sampler and verifier false-positive rate q,
    the solve rate within N against the expected samples drawn, both with
    their intervals as error bars (lower left is cheaper, higher is better);
  * the maj@k breakdown: per sampler, maj@k on the problems whose most likely
    answer is right and on those where it is wrong, with intervals.
Panels without rows are left out.
"""

from __future__ import annotations

import math

import numpy as np

from qmotto.evals import report
from qmotto.evals import run_config
from qmotto.evals import tts_config
from qmotto.utils import files

MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _colors(rows: list[dict]) -> dict[str, str]:
  return {name: f"C{i}" for i, name in enumerate(dict.fromkeys(r["sampler"] for r in rows))}


def _k_panel(ax, rows: list[dict], label: str, colors: dict[str, str]) -> None:
  ks = sorted({r["k"] for r in rows})
  for name, color in colors.items():
    mine = sorted((r for r in rows if r["sampler"] == name), key=lambda r: r["k"])
    if not mine:
      continue
    k = np.array([r["k"] for r in mine])
    style = "o--" if name == run_config.BASELINE else "o-"
    ax.plot(k, [r["value"] for r in mine], style, ms=3, color=color, label=name)
    ax.fill_between(k, [r["ci_low"] for r in mine], [r["ci_high"] for r in mine], color=color, alpha=0.18, lw=0)
  ax.set_xscale("log", base=2)
  ax.set_xticks(ks, [str(k) for k in ks])
  ax.set_xlabel("k (samples per problem)")
  ax.set_ylabel(label)
  ax.set_ylim(0, 1.02)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  ax.set_title(label, fontsize=9)


def _first_success_panel(ax, rows: list[dict], colors: dict[str, str]) -> None:
  qs = sorted({r["q"] for r in rows})
  markers = {q: MARKERS[i % len(MARKERS)] for i, q in enumerate(qs)}
  for name, color in colors.items():
    mine = sorted((r for r in rows if r["sampler"] == name), key=lambda r: r["q"])
    if not mine:
      continue
    x = np.array([r["expected_samples"] for r in mine])
    y = np.array([r["value"] for r in mine])
    ax.plot(x, y, "--" if name == run_config.BASELINE else "-", color=color, lw=0.8, label=name)
    for r in mine:
      ax.errorbar(r["expected_samples"], r["value"],
                  xerr=[[r["expected_samples"] - r["samples_low"]], [r["samples_high"] - r["expected_samples"]]],
                  yerr=[[r["value"] - r["ci_low"]], [r["ci_high"] - r["value"]]],
                  fmt=markers[r["q"]], ms=4, capsize=2, color=color)
  for q, marker in markers.items():
    ax.plot([], [], marker, color="0.3", ls="", label=f"q = {q:g}")
  first = rows[0]
  ax.set_xlabel(f"expected samples drawn (rounds of {first.get('round_size')}, budget N = {first['k']})")
  ax.set_ylabel("solve rate within N")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  ax.set_title("sampling until verified (q: verifier false-positive rate)", fontsize=9)


def _breakdown_panel(ax, breakdown: list[dict], colors: dict[str, str]) -> None:
  k = breakdown[0]["k"]
  mine = [r for r in breakdown if r["k"] == k]
  classes = list(dict.fromkeys(r["problems"] for r in mine))
  names = [name for name in colors if any(r["sampler"] == name for r in mine)]
  width = 0.8 / max(1, len(names))
  for i, name in enumerate(names):
    for j, problems in enumerate(classes):
      row = next(r for r in mine if r["sampler"] == name and r["problems"] == problems)
      if row["value"] is None:
        continue
      x = j + (i - (len(names) - 1) / 2) * width
      ax.bar(x, row["value"], width, color=colors[name], alpha=0.8, label=name if j == 0 else None)
      ax.errorbar(x, row["value"], yerr=[[row["value"] - row["ci_low"]], [row["ci_high"] - row["value"]]],
                  color="k", capsize=2, lw=0.8)
  counts = {r["problems"]: r["num_problems"] for r in mine}
  ax.set_xticks(range(len(classes)), [f"{c.replace('_', ' ')}\n({counts[c]} problems)" for c in classes])
  ax.set_ylabel(f"maj@{k}")
  ax.set_ylim(0, 1.05)
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize=7)
  ax.set_title(f"maj@{k} by whether the model's most likely answer is right", fontsize=9)


def figure_tts(result: dict, *, title: str | None = None):
  """A matplotlib Figure of a test-time-scaling result (see the module docstring).

  Args:
    result: a dict with "rows" (sampler, metric, k, q, value, ci_low,
      ci_high; first_success rows also expected_samples, samples_low,
      samples_high, round_size), optionally "majority_breakdown", task,
      model, num_problems and config (for the title).
    title: overrides the default title.
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  rows = result["rows"]
  if not rows:
    raise ValueError("result['rows'] is empty: nothing to plot.")
  colors = _colors(rows)
  k_labels = [label for label in dict.fromkeys(r["metric"] for r in rows) if label != tts_config.FIRST_SUCCESS]
  first = [r for r in rows if r["metric"] == tts_config.FIRST_SUCCESS]
  breakdown = [r for r in result.get("majority_breakdown") or [] if r["value"] is not None]
  panels = len(k_labels) + bool(first) + bool(breakdown)
  cols = min(3, panels)
  grid_rows = math.ceil(panels / cols)
  fig = Figure(figsize=(4.6 * cols, 3.8 * grid_rows + 0.6), layout="constrained")
  axes = np.atleast_1d(fig.subplots(grid_rows, cols)).ravel()
  for ax, label in zip(axes, k_labels):
    _k_panel(ax, [r for r in rows if r["metric"] == label], label, colors)
  used = len(k_labels)
  if first:
    _first_success_panel(axes[used], first, colors)
    used += 1
  if breakdown:
    _breakdown_panel(axes[used], breakdown, colors)
    used += 1
  for ax in axes[used:]:
    ax.set_visible(False)
  if title is None:
    drawn = report.drawn_text(rows)
    config = result.get("config") or {}
    title = f"{result.get('task', '?')} / {result.get('model', '?')}"
    if "num_problems" in result:
      title += f", {result['num_problems']} problems"
    if "temperature" in config:
      title += f", T={config['temperature']}"
    title += (f"\ndrawn (problems x groups x size): {drawn}; " if drawn else "\n") + (
        f"bands and bars: {report.level_text(rows)} bootstrap intervals over problems")
  fig.suptitle(title, fontsize=10)
  return fig


def plot_tts(result: dict, path: str, *, title: str | None = None, dpi: int = 110) -> str:
  """Writes `figure_tts(result)` as a PNG to `path` atomically; returns path."""
  fig = figure_tts(result, title=title)
  return files.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi), mode="wb")
