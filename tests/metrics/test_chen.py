"""Chen et al.'s estimator against brute force, exact fractions, and bad input."""

import fractions
import itertools
import math

import numpy as np
import pytest

from qmotto import metrics


def _brute_force(n, c, k):
  """Mean over all k-subsets of n samples (the first c correct) of "any correct"."""
  subsets = list(itertools.combinations(range(n), k))
  return sum(any(i < c for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_matches_enumeration_of_all_k_subsets(n):
  for c in range(n + 1):
    for k in range(1, n + 1):
      got = metrics.chen_pass_at_k(n, c, k)
      assert got.shape == ()
      np.testing.assert_allclose(got, _brute_force(n, c, k), rtol=1e-12, atol=1e-15)


def test_vectorized_and_broadcast():
  n = np.array([[10], [20]])
  c = np.array([0, 1, 5, 10])
  got = metrics.chen_pass_at_k(n, c, 3)
  assert got.shape == (2, 4) and got.dtype == np.float64
  for i, nn in enumerate([10, 20]):
    for j, cc in enumerate(c):
      want = 1 - math.comb(nn - cc, 3) / math.comb(nn, 3)
      np.testing.assert_allclose(got[i, j], want, rtol=1e-13, atol=1e-15)
  assert got[0, 0] == 0.0 and not np.signbit(got[0, 0])  # c = 0: exactly +0.
  assert got[0, 3] == 1.0  # c = n: exactly 1.


@pytest.mark.parametrize(
    "n, c, k", [(200, 3, 50), (1000, 1, 1), (5000, 2, 7), (100_000, 1, 3), (64, 60, 8), (300, 250, 3)]
)
def test_matches_exact_fractions(n, c, k):
  # Both branches of the product form (k <= c and k > c) against exact
  # rational arithmetic; tiny pass@k values keep full relative precision.
  want = 1 - fractions.Fraction(math.comb(n - c, k), math.comb(n, k))
  np.testing.assert_allclose(metrics.chen_pass_at_k(n, c, k), float(want), rtol=1e-12)


def test_mixed_branches_in_one_call():
  n = np.array([50, 50, 50, 50])
  c = np.array([0, 2, 30, 49])
  got = metrics.chen_pass_at_k(n, c, 5)
  want = [1 - math.comb(50 - cc, 5) / math.comb(50, 5) for cc in c]
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_accepts_integral_floats():
  np.testing.assert_allclose(metrics.chen_pass_at_k(10.0, 3.0, 2), 1 - 21 / 45)


@pytest.mark.parametrize(
    "n, c, k, match",
    [
        (5, 2, 6, r"k=6 exceeds num_samples"),
        (5, 6, 2, r"num_correct must be <= num_samples"),
        (-1, 0, 1, r"num_samples must be >= 0"),
        (5, -1, 1, r"num_correct must be >= 0"),
        (5, 1, 0, r"k must be an int >= 1"),
        (5, 1, 2.0, r"k must be an int"),
        (5, 1, True, r"k must be an int"),
        (5.5, 1, 1, r"num_samples must hold integers"),
        (5, np.array([True, False]), 1, r"num_correct must hold integer counts"),
        (np.array([5, 6]), np.array([1, 2, 3]), 1, r"must broadcast"),
    ],
)
def test_bad_input(n, c, k, match):
  with pytest.raises(ValueError, match=match):
    metrics.chen_pass_at_k(n, c, k)


def test_counts_of_any_scalar_kind_are_accepted():
  import jax.numpy as jnp  # only the test uses JAX: metrics itself does not import it.

  expected = metrics.chen_pass_at_k(10, 3, 2)
  for k in [np.int64(2), np.int32(2), jnp.int32(2)]:
    np.testing.assert_allclose(metrics.chen_pass_at_k(10, 3, k), expected)
  with pytest.raises(ValueError, match="k must be an int"):
    metrics.chen_pass_at_k(10, 3, "2")
