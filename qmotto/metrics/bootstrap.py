"""Percentile bootstrap over problems, with explicit seeds."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from qmotto.metrics import _validate

# Resampling weights handled at once: chunk * num_problems integers.
_WEIGHTS_CHUNK = 1 << 22


class ConfidenceInterval(NamedTuple):
  """A point estimate with a percentile-bootstrap interval.

  Attributes:
    mean: the mean over problems (a float, or an array for trailing dims).
    low: lower end of the interval.
    high: upper end of the interval.
  """

  mean: float | np.ndarray
  low: float | np.ndarray
  high: float | np.ndarray


def finite_per_problem(name: str, per_problem) -> np.ndarray:
  """`per_problem` as float64 with at least one axis, no empty axis, all finite."""
  array = np.asarray(per_problem)
  if array.dtype == object or not (
      np.issubdtype(array.dtype, np.number) or array.dtype == bool
  ):
    raise ValueError(f"{name} must be a numeric array, got dtype {array.dtype}.")
  array = array.astype(np.float64)
  if array.ndim == 0:
    raise ValueError(f"{name} must have a leading problem axis, got a scalar.")
  if 0 in array.shape:
    raise ValueError(f"{name} must have no empty axis, got shape {array.shape}.")
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{name} must be finite (no NaN or inf).")
  return array


def resampled_means(flat: np.ndarray, *, seed: int, num_resamples: int) -> np.ndarray:
  """float64[B, F]: means of `flat` [P, F] over B bootstrap resamples of its rows.

  Resample b draws P row indices uniformly with replacement; all F columns
  share the same draws. The draws depend only on (seed, P, B), not on F, so
  a column gives the same resampled means alone or alongside others.
  """
  num_problems = flat.shape[0]
  rng = np.random.default_rng(seed)
  chunk = max(1, _WEIGHTS_CHUNK // num_problems)
  out = np.empty((num_resamples, flat.shape[1]), dtype=np.float64)
  for start in range(0, num_resamples, chunk):
    size = min(chunk, num_resamples - start)
    index = rng.integers(0, num_problems, size=(size, num_problems))
    offsets = num_problems * np.arange(size)[:, None]
    counts = np.bincount((index + offsets).ravel(), minlength=size * num_problems)
    counts = counts.reshape(size, num_problems).astype(np.float64)
    out[start : start + size] = counts @ flat / num_problems
  return out


def bootstrap_ci(
    per_problem, *, seed: int, num_resamples: int = 2000, level: float = 0.95
) -> ConfidenceInterval:
  """Percentile bootstrap interval of the mean over problems (axis 0).

  Problems are resampled with replacement, all trailing entries of a problem
  together (so, for per_problem [P, K], the K columns share the resamples
  and their intervals are jointly meaningful). The interval is the
  ((1 - level)/2, (1 + level)/2) quantiles of the resampled means (linear
  interpolation between order statistics).

  Args:
    per_problem: float[P, ...] per-problem values (e.g. `pass_at_k` output).
    seed: int >= 0 for `np.random.default_rng`; required (no hidden
      randomness): the same seed gives the same interval.
    num_resamples: bootstrap resamples B >= 1.
    level: confidence level in (0, 1).

  Returns:
    ConfidenceInterval(mean, low, high): floats for 1-D input, else arrays of
    shape per_problem.shape[1:].
  """
  seed = _validate.check_seed(seed)
  num_resamples = _validate.int_argument("num_resamples", num_resamples, minimum=1)
  level = _validate.check_level(level)
  values = finite_per_problem("per_problem", per_problem)
  trailing = values.shape[1:]
  flat = values.reshape(values.shape[0], -1)
  means = resampled_means(flat, seed=seed, num_resamples=num_resamples)
  low, high = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=0)
  mean = flat.mean(axis=0)
  # With constant data the resampled means differ from the plain mean only by
  # float rounding; snap such ulp-sized gaps so the interval is the point.
  tolerance = 1e-12 * np.maximum(1.0, np.abs(mean))
  low = np.where(np.abs(low - mean) <= tolerance, mean, low)
  high = np.where(np.abs(high - mean) <= tolerance, mean, high)
  if not trailing:
    return ConfidenceInterval(float(mean[0]), float(low[0]), float(high[0]))
  return ConfidenceInterval(mean.reshape(trailing), low.reshape(trailing), high.reshape(trailing))
