"""Tests of the toy suite (qmotto.evals.toy): exact answer probabilities, reproducible problems."""

import jax
import numpy as np
import pytest

import qmotto
from qmotto.evals import toy


def test_answer_probs_match_sampling():
  # 20 problems x 20000 i.i.d. samples: |freq - p| < 5.5 sd per problem
  # (two-sided 3.8e-8, x 20 problems < 1e-6).
  suite = toy.make_suite(3, num_problems=20)
  p = suite.answer_probs()
  tokens = np.asarray(
      qmotto.sample_sequences_batched(
          jax.random.key(0), toy.table_logits_fn(suite.group_tables(np.arange(20))),
          num_groups=20, num_samples=20000, length=suite.length, sampling="iid",
      )
  )
  freq = (tokens == suite.answers[:, None, :]).all(-1).mean(-1)
  sd = np.sqrt(p * (1 - p) / 20000)
  assert (np.abs(freq - p) < 5.5 * sd + 1e-4).all()


def test_suite_is_reproducible_and_validated():
  a, b = toy.make_suite(1, num_problems=4), toy.make_suite(1, num_problems=4)
  np.testing.assert_array_equal(a.logits, b.logits)
  with pytest.raises(ValueError, match="num_problems"):
    toy.make_suite(0, num_problems=0)
