"""GRPO learning-curve figures (qmotto.rl.figures): one panel per PLOT_PANELS entry, a mean line per sampler."""

import os

import pytest

from qmotto.rl import figures


def _run(sampler, seed, curve):
  log = [{"kind": "eval", "step": 10 * i, "pass@1": v} for i, v in enumerate(curve)]
  log += [{"kind": "train", "step": 10 * i + 10, "reward": v, "zero_variance": 0.5, "distinct": 2.0}
          for i, v in enumerate(curve)]
  return {"task": "t", "sampler": sampler, "seed": seed, "log": log}


def test_figure_of_runs_and_its_file(tmp_path):
  runs = [_run("iid", 0, [0.1, 0.2]), _run("iid", 1, [0.2, 0.3]), _run("lattice", 0, [0.1, 0.4])]
  fig = figures.figure_runs(runs, title="GRPO t")
  assert len(fig.axes) == len(figures.PLOT_PANELS)
  assert [ax.get_title() for ax in fig.axes] == [label for _, _, label in figures.PLOT_PANELS]
  labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
  assert labels == ["iid (mean of 2)", "lattice"]
  arms = [dict(_run("iid", 0, [0.1, 0.2]), arm="iid_G8"), dict(_run("iid", 0, [0.1, 0.3]), arm="iid_G16")]
  legend = figures.figure_runs(arms).axes[0].get_legend().get_texts()
  assert [text.get_text() for text in legend] == ["iid_G16", "iid_G8"]  # one line per arm, not per sampler.
  path = tmp_path / "sub" / "fig.png"
  figures.save_figure(fig, str(path))
  assert os.path.getsize(path) > 1000


def test_no_runs_is_an_error():
  with pytest.raises(ValueError, match="results is empty"):
    figures.figure_runs([])
