"""bootstrap_ci: determinism, shapes, shrinking intervals, coverage, errors."""

import math

import numpy as np
import pytest

from qmotto import metrics


def _data(num_problems, seed=0):
  return (np.random.default_rng(seed).random(num_problems) < 0.3).astype(np.float64)


def test_contains_mean_and_is_reproducible():
  x = _data(200)
  ci = metrics.bootstrap_ci(x, seed=7)
  assert isinstance(ci, metrics.ConfidenceInterval)
  assert all(isinstance(v, float) for v in ci)
  assert ci.mean == pytest.approx(x.mean(), abs=1e-15)
  assert ci.low < ci.mean < ci.high
  assert metrics.bootstrap_ci(x, seed=7) == ci  # same seed, same interval.
  y = np.random.default_rng(0).random(200)  # continuous: no ties between seeds.
  assert metrics.bootstrap_ci(y, seed=7) != metrics.bootstrap_ci(y, seed=8)
  mean, low, high = ci  # unpacks as a triple.
  assert low <= mean <= high


def test_matches_the_normal_interval_for_a_large_sample():
  # For P = 2000 problems the percentile interval of a mean is close to
  # mean -/+ 1.96 sd / sqrt(P): each end within 15% of the normal half-width
  # (Monte Carlo error of a 2.5% quantile from 2000 resamples is ~4%).
  x = _data(2000, seed=1)
  ci = metrics.bootstrap_ci(x, seed=0)
  half = 1.959964 * x.std() / math.sqrt(x.size)
  assert ci.mean - ci.low == pytest.approx(half, rel=0.15)
  assert ci.high - ci.mean == pytest.approx(half, rel=0.15)


def test_shrinks_with_more_problems():
  # The same pattern of values, repeated 100x: the width falls ~10x.
  small = np.tile([0.0, 1.0, 0.5, 0.25], 5)  # 20 problems.
  large = np.tile(small, 100)  # 2000 problems.
  w_small = np.subtract(*metrics.bootstrap_ci(small, seed=0)[:0:-1])
  w_large = np.subtract(*metrics.bootstrap_ci(large, seed=0)[:0:-1])
  assert w_large < w_small / 5


def test_trailing_dims_share_resamples():
  rng = np.random.default_rng(3)
  x = rng.random((50, 3, 2))
  ci = metrics.bootstrap_ci(x, seed=11, num_resamples=500)
  for v in ci:
    assert v.shape == (3, 2)
  np.testing.assert_allclose(ci.mean, x.mean(axis=0))
  for i in range(3):
    for j in range(2):
      single = metrics.bootstrap_ci(x[:, i, j], seed=11, num_resamples=500)
      np.testing.assert_allclose([ci.mean[i, j], ci.low[i, j], ci.high[i, j]], single, rtol=1e-12)


def test_constant_data_gives_a_point_interval():
  ci = metrics.bootstrap_ci(np.full(37, 0.1), seed=0)
  assert ci.low == ci.mean == ci.high == pytest.approx(0.1)


def test_one_problem():
  assert metrics.bootstrap_ci([0.25], seed=0) == (0.25, 0.25, 0.25)


def test_level_widens_the_interval():
  x = _data(300, seed=4)
  narrow = metrics.bootstrap_ci(x, seed=0, level=0.5)
  wide = metrics.bootstrap_ci(x, seed=0, level=0.99)
  assert wide.low < narrow.low < narrow.high < wide.high


def test_coverage_on_simulated_data():
  # 300 data sets of 100 Bernoulli(0.3) problems. The 95% percentile
  # interval covers 0.3 in about 94% of them; the count of covering sets is
  # Binomial(300, c) with c >= 0.93, mean >= 279, sd <= 4.5, so >= 255 (85%)
  # fails with probability < 1e-7 (5.4 sd). The mean width must be near the
  # normal value 2 * 1.96 * sqrt(0.21 / 100) = 0.180 (it varies by ~3% here).
  rng = np.random.default_rng(5)
  covered, widths = 0, []
  for i in range(300):
    x = (rng.random(100) < 0.3).astype(float)
    ci = metrics.bootstrap_ci(x, seed=i, num_resamples=1000)
    covered += ci.low <= 0.3 <= ci.high
    widths.append(ci.high - ci.low)
  assert covered >= 255
  assert 0.15 < np.mean(widths) < 0.21


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([0.1, 0.2],), dict(seed=None), r"seed must be a non-negative int"),
        (([0.1, 0.2],), dict(seed=-1), r"seed must be an int >= 0"),
        (([0.1, 0.2],), dict(seed=1.5), r"seed must be an int"),
        (([0.1, 0.2],), dict(seed=0, level=1.0), r"level must be a float in \(0, 1\)"),
        (([0.1, 0.2],), dict(seed=0, level=0), r"level must be a float in \(0, 1\)"),
        (([0.1, 0.2],), dict(seed=0, num_resamples=0), r"num_resamples must be an int >= 1"),
        ((0.5,), dict(seed=0), r"leading problem axis"),
        (([],), dict(seed=0), r"no empty axis"),
        (([0.1, np.nan],), dict(seed=0), r"per_problem must be finite"),
        ((["a", "b"],), dict(seed=0), r"per_problem must be a numeric array"),
    ],
)
def test_bad_input(args, kwargs, match):
  with pytest.raises(ValueError, match=match):
    metrics.bootstrap_ci(*args, **kwargs)


def test_seed_is_required():
  with pytest.raises(TypeError):
    metrics.bootstrap_ci([0.1, 0.2])  # pylint: disable=missing-kwoa
