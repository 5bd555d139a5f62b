"""Learning-curve figures of GRPO runs: reward, held-out pass@1, zero-variance groups, distinct completions.

    fig = figure_runs(summary.load_runs("results/grpo/maze_experiment"), title="GRPO maze")
    save_figure(fig, "results/grpo/summary_maze.png")

matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from qmotto.rl import summary

# The 2x2 panels: (log record kind, field, title).
PLOT_PANELS = (
    ("train", "reward", "train reward (mean)"),
    ("eval", "pass@1", "held-out pass@1"),
    ("train", "zero_variance", "zero-variance groups"),
    ("train", "distinct", "distinct completions / group"),
)


def figure_runs(results: Sequence[dict], *, title: str | None = None):
  """A 2x2 Figure of reward, held-out pass@1, zero-variance fraction and distinct per group vs step.

  One color per arm (`summary.run_arm`'s "arm" where the results carry it, as
  `summary.load_runs` gives them; else the sampler): each run a thin line, the
  mean over an arm's runs (where they share steps) a thick one.
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  if not results:
    raise ValueError("results is empty: nothing to plot.")
  fig = Figure(figsize=(10, 7), layout="constrained")
  axes = fig.subplots(2, 2).ravel()
  arm_of = lambda r: r.get("arm", r["sampler"])  # noqa: E731
  arms = sorted({arm_of(r) for r in results})
  colors = {arm: f"C{i % 10}" for i, arm in enumerate(arms)}
  for ax, (kind, field, label) in zip(axes, PLOT_PANELS):
    for arm in arms:
      curves = []
      runs = [r for r in results if arm_of(r) == arm]
      for r in runs:
        points = [(x["step"], x[field]) for x in r["log"] if x.get("kind") == kind and x.get(field) is not None]
        if points:
          steps, values = zip(*points)
          curves.append(dict(zip(steps, values)))
          ax.plot(steps, values, color=colors[arm], alpha=0.3 if len(runs) > 1 else 1.0, lw=0.8)
      common = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
      if len(curves) > 1 and common:
        ax.plot(common, [np.mean([c[s] for c in curves]) for s in common], color=colors[arm], lw=2,
                label=f"{arm} (mean of {len(curves)})")
      elif curves:
        ax.plot([], [], color=colors[arm], label=arm)
    ax.set_xlabel("step")
    ax.set_title(label)
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  if title is None:
    r = results[0]
    title = f"GRPO {r['task']} / {r['sampler']} seed {r['seed']}" if len(results) == 1 else f"GRPO {r['task']}"
  fig.suptitle(title)
  return fig


def save_figure(fig, path: str) -> None:
  """Writes `fig` to `path` (a PNG at 110 dpi), making its folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=110)


def save_summary_figures(results: Sequence[dict], output_dir: str) -> list[str]:
  """One `figure_runs` per (experiment, task) of `summary.load_runs` results; returns the paths written.

  Named summary_<task>.png for the first experiment (the names it always had)
  and summary_<experiment>_<task>.png for the others.
  """
  paths = []
  for experiment, task in sorted({(r["experiment"], r["task"]) for r in results}):
    runs = [r for r in results if (r["experiment"], r["task"]) == (experiment, task)]
    name = task if experiment == summary.FIRST_EXPERIMENT else f"{experiment}_{task}"
    path = os.path.join(output_dir, f"summary_{name}.png")
    save_figure(figure_runs(runs, title=f"GRPO {experiment} {task}: {len(runs)} runs"), path)
    paths.append(path)
  return paths
