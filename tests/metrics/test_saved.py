"""samples_saved and bootstrap_samples_saved: hand-computed cases and errors."""

import math

import numpy as np
import pytest

from qmotto import metrics

KS = [1, 2, 4, 8, 16]
IID = [0.2, 0.35, 0.5, 0.6, 0.7]  # i.i.d. pass@16 = 0.7 is the target for k = 16.


@pytest.mark.parametrize("interpolate", [True, False])
def test_exact_grid_hit(interpolate):
  sampler = [0.2, 0.4, 0.6, 0.7, 0.75]  # reaches 0.7 at k' = 8.
  assert metrics.samples_saved(KS, sampler, IID, 16, interpolate=interpolate) == 0.5


def test_interpolation_in_log2_k():
  sampler = [0.2, 0.4, 0.6, 0.68, 0.75]  # 0.7 lies 2/7 of the way from k' = 8 to 16.
  k_prime = 2 ** (3 + 2 / 7)  # 9.75
  assert metrics.samples_saved(KS, sampler, IID, 16) == pytest.approx(1 - k_prime / 16, abs=1e-12)
  assert metrics.samples_saved(KS, sampler, IID, 16, interpolate=False) == 0.0


def test_never_reached_is_nan():
  sampler = [0.1, 0.2, 0.3, 0.4, 0.5]
  assert math.isnan(metrics.samples_saved(KS, sampler, IID, 16))
  assert math.isnan(metrics.samples_saved(KS, sampler, IID, 16, interpolate=False))


def test_reached_only_beyond_k_is_negative():
  ks = KS + [32]
  iid = IID + [0.8]
  sampler = [0.2, 0.3, 0.4, 0.5, 0.66, 0.72]  # target 0.7 at k = 16; reached at 32.
  assert metrics.samples_saved(ks, sampler, iid, 16, interpolate=False) == -1.0
  k_prime = 16 * 2 ** (2 / 3)  # 0.7 is 2/3 of the way from 0.66 to 0.72.
  assert metrics.samples_saved(ks, sampler, iid, 16) == pytest.approx(1 - k_prime / 16, abs=1e-12)


def test_reached_at_the_first_grid_point():
  # Nothing below ks[0] is known: k' = ks[0], with or without interpolation.
  sampler = [0.4, 0.5, 0.6, 0.7, 0.8]
  assert metrics.samples_saved(KS, sampler, IID, 2) == 0.5
  assert metrics.samples_saved(KS, sampler, IID, 2, interpolate=False) == 0.5


def test_equal_curves_save_nothing():
  for k in KS:
    assert metrics.samples_saved(KS, IID, IID, k) == 0.0


def test_first_crossing_of_a_noisy_curve():
  sampler = [0.2, 0.72, 0.6, 0.65, 0.75]  # crosses 0.7 first between 1 and 2.
  k_prime = 2 ** (0.5 / 0.52)
  assert metrics.samples_saved(KS, sampler, IID, 16) == pytest.approx(1 - k_prime / 16, abs=1e-12)


def test_rounding_does_not_block_a_hit():
  # 1e-15 below the target still counts as reaching it (REACH_ATOL = 1e-12).
  sampler = [0.2, 0.4, 0.6, 0.7 - 1e-15, 0.75]
  assert metrics.samples_saved(KS, sampler, IID, 16, interpolate=False) == 0.5
  assert metrics.samples_saved(KS, sampler, IID, 16) == 0.5  # t clipped to 1.
  assert metrics.samples_saved(KS, [0.2, 0.4, 0.6, 0.69, 0.75], IID, 16, interpolate=False) == 0.0


@pytest.mark.parametrize(
    "args, match",
    [
        ((KS, IID, IID, 3), r"k=3 must be one of ks"),
        (([1, 4, 2, 8, 16], IID, IID, 16), r"ks must be strictly increasing"),
        (([0, 1, 2, 4, 8], IID, IID, 8), r"ks must hold ints >= 1"),
        (([1.5, 2, 4, 8, 16], IID, IID, 16), r"ks must hold integers"),
        ((KS, IID[:4], IID, 16), r"sampler_curve must have one value per k of ks \(5\), got 4"),
        ((KS, IID, [0.2, 0.35, 0.5, 0.6, 1.1], 16), r"iid_curve must hold probabilities"),
        ((KS, [0.2, np.nan, 0.5, 0.6, 0.7], IID, 16), r"sampler_curve must be finite"),
    ],
)
def test_bad_input(args, match):
  with pytest.raises(ValueError, match=match):
    metrics.samples_saved(*args)


# --- bootstrap ----------------------------------------------------------------


def _lattice_like(num_problems, seed):
  """Per-problem curves [P, K]: the union bound vs i.i.d. for p_i ~ Beta(0.5, 3)."""
  p = np.random.default_rng(seed).beta(0.5, 3.0, size=num_problems)
  ks = np.array([1, 2, 4, 8, 16, 32])
  return ks, metrics.union_bound_per_problem(p, ks), metrics.iid_pass_at_k_from_p(p, ks)


def test_bootstrap_estimate_and_interval():
  ks, sampler, iid = _lattice_like(400, seed=0)
  got = metrics.bootstrap_samples_saved(ks, sampler, iid, 16, seed=3)
  assert isinstance(got, metrics.SavingsInterval)
  want = metrics.samples_saved(ks, sampler.mean(0), iid.mean(0), 16)
  assert got.estimate == want
  assert 0.0 < got.low <= got.estimate <= got.high < 1.0
  assert metrics.bootstrap_samples_saved(ks, sampler, iid, 16, seed=3) == got
  # More problems, narrower interval (same distribution, 16x the problems).
  ks, sampler_big, iid_big = _lattice_like(6400, seed=1)
  big = metrics.bootstrap_samples_saved(ks, sampler_big, iid_big, 16, seed=3)
  assert big.high - big.low < (got.high - got.low) / 2


def test_bootstrap_identical_problems_give_a_point():
  sampler = np.tile([0.2, 0.4, 0.6, 0.68, 0.75], (10, 1))
  iid = np.tile(IID, (10, 1))
  got = metrics.bootstrap_samples_saved(KS, sampler, iid, 16, seed=0)
  want = metrics.samples_saved(KS, sampler[0], IID, 16)
  assert got.estimate == pytest.approx(want, abs=1e-12)
  assert got.low == pytest.approx(want, abs=1e-12) and got.high == pytest.approx(want, abs=1e-12)


def test_bootstrap_never_reached_counts_as_minus_infinity():
  sampler = np.tile([0.1, 0.2, 0.3, 0.4, 0.5], (10, 1))
  iid = np.tile(IID, (10, 1))
  got = metrics.bootstrap_samples_saved(KS, sampler, iid, 16, seed=0)
  assert math.isnan(got.estimate)
  assert got.low == -np.inf and got.high == -np.inf


def test_bootstrap_resamples_problems_jointly():
  # Two kinds of problems, A and B. On both, the sampler's pass@8 equals the
  # i.i.d. pass@16 (0.9 and 0.3) and its pass@4 is lower, so any mix of A and
  # B saves exactly 1/2 -- if the two curves are resampled with the SAME
  # problems. Resampling them separately would spread the savings.
  sampler = np.array([[0.2, 0.5, 0.8, 0.9, 0.95], [0.0, 0.1, 0.2, 0.3, 0.4]] * 20)
  iid = np.array([[0.2, 0.4, 0.5, 0.8, 0.9], [0.0, 0.05, 0.1, 0.2, 0.3]] * 20)
  # Means: sampler [.1, .3, .5, .6, .675], iid [.1, .225, .3, .5, .6]; the
  # target .6 at k = 16 is reached at k' = 8 exactly.
  got = metrics.bootstrap_samples_saved(KS, sampler, iid, 16, seed=0, interpolate=False)
  assert got.estimate == 0.5
  assert got.low == got.high == 0.5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seed=None), r"seed must be a non-negative int"),
        (dict(seed=0, level=1.5), r"level must be a float in \(0, 1\)"),
        (dict(seed=0, num_resamples=0), r"num_resamples must be an int >= 1"),
    ],
)
def test_bootstrap_bad_options(kwargs, match):
  sampler = np.tile(IID, (4, 1))
  with pytest.raises(ValueError, match=match):
    metrics.bootstrap_samples_saved(KS, sampler, sampler, 16, **kwargs)


def test_bootstrap_bad_shapes():
  a = np.tile(IID, (4, 1))
  with pytest.raises(ValueError, match=r"must both be \[P, 5\]"):
    metrics.bootstrap_samples_saved(KS, a, a[:3], 16, seed=0)
  with pytest.raises(ValueError, match=r"must both be \[P, 5\]"):
    metrics.bootstrap_samples_saved(KS, a[:, :4], a[:, :4], 16, seed=0)
  with pytest.raises(ValueError, match=r"sampler_per_problem must be 2-D"):
    metrics.bootstrap_samples_saved(KS, a[0], a, 16, seed=0)
