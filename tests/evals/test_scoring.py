"""Tests of answers and distinct answers per group (qmotto.evals.scoring)."""

import numpy as np
import pytest

import qmotto
from qmotto.evals import scoring
from tests.evals import helpers


def test_distinct_answers():
  codes = np.array([[[0, 0, 1, -1], [2, 2, 2, 2]]])  # [P=1, R=2, n=4], -1: no answer.
  assert scoring.distinct_per_group(codes, "iid", 4)[0] == pytest.approx((2 + 1) / 2)
  # Sobol blocks {0,1}, {2,3}: 1, 1 (the -1 is not counted), then 1, 1.
  assert scoring.distinct_per_group(codes, "sobol", 2)[0] == pytest.approx(1.0)
  # Lattice strides {0,2}, {1,3}: 2, 1 and 1, 1.
  assert scoring.distinct_per_group(codes, "lattice", 2)[0] == pytest.approx(5 / 4)
  # A Sampler object counts like its name.
  assert scoring.distinct_per_group(codes, qmotto.get_sampler("lattice"), 2)[0] == pytest.approx(5 / 4)


def test_answer_codes_and_hashes():
  hashes = np.array([[[5, 9, 5]]], np.int64)
  np.testing.assert_array_equal(scoring.answer_codes(np.array([[[True, True, False]]]), hashes), [[[0, 1, -1]]])
  assert scoring.answer_hash("12") == scoring.answer_hash("12") != scoring.answer_hash("21")


def test_scorer_scores_and_extracts_once():
  task = helpers.FakeTask()
  problem = task.problems("test", 1)[0]  # "0+1": answer "1".
  scorer = scoring.Scorer(task, "compact", threshold=1.0)
  assert scorer(problem, "1") == (True, "1")
  assert scorer(problem, "3") == (False, "3")
  assert scorer(problem, "") == (False, None)
