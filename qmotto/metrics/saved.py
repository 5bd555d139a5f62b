"""The headline metric: fraction of samples saved against i.i.d. sampling.

The curves may be any accuracy at k in [0, 1] estimated for both samplers on
the same problems: pass@k (`passk.pass_at_k`), or maj@k, weighted@k, bon@k
(`tts.strategy_at_k`). Only pass@k is sure to increase with k; the saving
reads the first k' where the sampler's curve reaches the target either way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from qmotto.metrics import _validate
from qmotto.metrics import bootstrap as bootstrap_lib

# A sampler value counts as reaching the target when >= target - REACH_ATOL
# (float rounding only; pass@k values are means of 0/1 indicators).
REACH_ATOL = 1e-12


class SavingsInterval(NamedTuple):
  """Samples saved with a percentile-bootstrap interval.

  Attributes:
    estimate: `samples_saved` on the mean curves of all problems.
    low: lower end of the interval (-inf when more than (1 - level)/2 of the
      resamples never reach the target within the grid).
    high: upper end (-inf likewise, when almost none reach it).
  """

  estimate: float
  low: float
  high: float


def _check_ks(ks) -> np.ndarray:
  values = _validate.positive_int_vector("ks", ks)
  if np.any(np.diff(values) <= 0):
    raise ValueError(f"ks must be strictly increasing, got {values.tolist()}.")
  return values


def _k_index(ks: np.ndarray, k) -> int:
  k = _validate.int_argument("k", k, minimum=1)
  where = np.flatnonzero(ks == k)
  if where.size == 0:
    raise ValueError(f"k={k} must be one of ks={ks.tolist()} (the i.i.d. value at k is read there).")
  return int(where[0])


def _saved(ks: np.ndarray, curves: np.ndarray, targets: np.ndarray, k: int, interpolate: bool):
  """float64[B]: samples saved for each row of curves [B, K] and targets [B]."""
  reached = curves >= targets[:, None] - REACH_ATOL  # [B, K]
  first = np.argmax(reached, axis=1)  # first reaching index (0 if none).
  never = ~np.any(reached, axis=1)
  k_prime = ks[first].astype(np.float64)
  if interpolate:
    rows = np.flatnonzero(~never & (first > 0))
    j = first[rows]
    below, above = curves[rows, j - 1], curves[rows, j]
    # below < target - atol <= above, so above > below.
    t = np.clip((targets[rows] - below) / (above - below), 0.0, 1.0)
    log_lo, log_hi = np.log2(ks[j - 1]), np.log2(ks[j])
    k_prime[rows] = np.exp2(log_lo + t * (log_hi - log_lo))
  saved = 1.0 - k_prime / k
  saved[never] = np.nan
  return saved


def samples_saved(ks, sampler_curve, iid_curve, k: int, *, interpolate: bool = True) -> float:
  """Fraction of samples saved: 1 - k'/k, k' the smallest k' where the sampler
  reaches i.i.d. pass@k (or the i.i.d. value of another metric@k).

  The target is iid_curve at k. k' is found on the sampler curve over the
  WHOLE grid ks, also beyond k:
    * the first grid point j where sampler_curve[j] >= target (up to
      REACH_ATOL rounding) gives k' = ks[j] without interpolation;
    * with interpolate=True and j > 0, the sampler curve is interpolated
      linearly in log2(k') between ks[j - 1] (below the target) and ks[j]:
      log2 k' = log2 ks[j-1] + t (log2 ks[j] - log2 ks[j-1]),
      t = (target - s[j-1]) / (s[j] - s[j-1]); k' need not be an integer.
      When j = 0 no point below the grid is known and k' = ks[0] (so the
      saving is a lower bound there).
  Results:
    * > 0: the sampler reaches i.i.d. pass@k with fewer samples;
    * 0: it needs exactly k;
    * < 0: it only reaches the target beyond k (a loss);
    * NaN: it never reaches the target within ks (a loss larger than the
      grid can measure). No extrapolation is done.

  Args:
    ks: strictly increasing ints >= 1, the k values both curves were
      evaluated at (e.g. 1, 2, 4, ..., 64).
    sampler_curve: float[K] the sampler's pass@ks, or maj@ks etc. (mean over
      problems), in [0, 1].
    iid_curve: float[K] i.i.d. values of the same metric at ks (mean over problems).
    k: the budget whose i.i.d. value is the target; must be one of ks.
    interpolate: see above.

  Returns:
    float: 1 - k'/k, or NaN.
  """
  ks = _check_ks(ks)
  sampler_curve = _validate.probability_array("sampler_curve", sampler_curve, ndim=1)
  iid_curve = _validate.probability_array("iid_curve", iid_curve, ndim=1)
  for name, curve in (("sampler_curve", sampler_curve), ("iid_curve", iid_curve)):
    if curve.shape != ks.shape:
      raise ValueError(f"{name} must have one value per k of ks ({ks.size}), got {curve.size}.")
  index = _k_index(ks, k)
  saved = _saved(ks, sampler_curve[None, :], iid_curve[index : index + 1], int(k), bool(interpolate))
  return float(saved[0])


def bootstrap_samples_saved(
    ks,
    sampler_per_problem,
    iid_per_problem,
    k: int,
    *,
    seed: int,
    num_resamples: int = 1000,
    level: float = 0.95,
    interpolate: bool = True,
) -> SavingsInterval:
  """`samples_saved` with a percentile-bootstrap interval over problems.

  Each resample draws P problems with replacement and uses the SAME problems
  for both curves (the two samplers were run on the same problems, so their
  errors are correlated), recomputing both mean curves and the saving. A
  resample whose sampler curve never reaches the target (NaN saving) counts
  as -inf, below every finite saving, so the interval stays honest: its low
  end is -inf when too many resamples never reach the target within ks.

  Args:
    ks: strictly increasing ints >= 1 (see `samples_saved`).
    sampler_per_problem: float[P, K] the sampler's per-problem pass@ks (or
      maj@ks, ..., from `strategy_at_k`).
    iid_per_problem: float[P, K] i.i.d. per-problem values of the same
      metric, same problems.
    k: one of ks.
    seed: int >= 0 for `np.random.default_rng`; required.
    num_resamples: bootstrap resamples B >= 1.
    level: confidence level in (0, 1).
    interpolate: see `samples_saved`.

  Returns:
    SavingsInterval(estimate, low, high); the interval ends are order
    statistics of the resampled savings (no interpolation between them).
  """
  seed = _validate.check_seed(seed)
  num_resamples = _validate.int_argument("num_resamples", num_resamples, minimum=1)
  level = _validate.check_level(level)
  ks = _check_ks(ks)
  index = _k_index(ks, k)
  sampler = _validate.probability_array("sampler_per_problem", sampler_per_problem, ndim=2)
  iid = _validate.probability_array("iid_per_problem", iid_per_problem, ndim=2)
  if sampler.shape != iid.shape or sampler.shape[1] != ks.size:
    raise ValueError(
        f"sampler_per_problem {sampler.shape} and iid_per_problem {iid.shape} must both be "
        f"[P, {ks.size}] (one column per k of ks, the same problems in the same order)."
    )
  estimate = samples_saved(ks, sampler.mean(axis=0), iid.mean(axis=0), k, interpolate=interpolate)
  means = bootstrap_lib.resampled_means(
      np.concatenate([sampler, iid], axis=1), seed=seed, num_resamples=num_resamples
  )
  sampler_means, iid_means = means[:, : ks.size], means[:, ks.size :]
  saved = _saved(ks, sampler_means, iid_means[:, index], int(k), bool(interpolate))
  saved = np.where(np.isnan(saved), -np.inf, saved)
  low, high = np.quantile(
      saved, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], method="inverted_cdf"
  )
  return SavingsInterval(float(estimate), float(low), float(high))
