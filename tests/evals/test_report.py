"""Tests of the pass@k report (qmotto.evals.report): rows and tables."""

import numpy as np
import pytest

from qmotto.evals import report


def test_report_rejects_sizes_no_group_serves():
  correct = {"iid": np.zeros((3, 2, 8), bool), "stratified": np.zeros((3, 2, 8), bool)}
  with pytest.raises(ValueError, match="no group size"):
    report.passk_rows(correct, [1, 2, 8], seed=0)
  with pytest.raises(ValueError, match="baseline"):
    report.passk_rows({"lattice": np.zeros((3, 2, 8), bool)}, [1], seed=0)


def test_savings_markdown():
  def row(sampler, k, p, saved, low, high):
    return dict(task="t", model="m", num_problems=9, sampler=sampler, k=k, pass_at_k=p,
                samples_saved=saved, saved_low=low, saved_high=high)

  rows = [row("iid", 16, 0.5, 0.0, 0.0, 0.0), row("lattice", 16, 0.6, 0.3, 0.2, 0.4),
          row("iid", 64, 0.8, 0.0, 0.0, 0.0), row("lattice", 64, 0.9, 0.4, -np.inf, 0.5)]
  lines = report.savings_markdown(rows, [16, 64]).splitlines()
  assert lines[0] == ("| task | model | problems | sampler | iid pass@16 | saved at k=16 | iid pass@64 | "
                      "saved at k=64 |")
  assert lines[2] == "| t | m | 9 | lattice | 0.500 | +30% [+20%, +40%] | 0.800 | +40% [-inf, +50%] |"
  assert len(lines) == 3  # the baseline gets no row of its own
