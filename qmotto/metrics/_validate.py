"""Argument checks shared by the metrics modules (private)."""

from __future__ import annotations

import numbers

import numpy as np


def _as_scalar(value):
  """A 0-d array (NumPy, or JAX without importing it) as a NumPy scalar; anything else as is."""
  if not isinstance(value, (str, bytes)) and getattr(value, "shape", None) == () and hasattr(value, "dtype"):
    return np.asarray(value)[()]
  return value


def int_argument(name: str, value, *, minimum: int | None = None) -> int:
  """`value` as a Python int; raises unless it is an integer (not a bool) >= minimum.

  Python, NumPy and JAX integer scalars (0-d arrays) are accepted alike.
  """
  value = _as_scalar(value)
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
    raise ValueError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
  value = int(value)
  if minimum is not None and value < minimum:
    raise ValueError(f"{name} must be an int >= {minimum}, got {value}.")
  return value


def check_seed(seed) -> int:
  """The bootstrap seed: a required non-negative int (no hidden randomness)."""
  if seed is None:
    raise ValueError(
        "seed must be a non-negative int (it seeds np.random.default_rng); got None. "
        "The bootstrap has no hidden randomness: pass a seed explicitly."
    )
  return int_argument("seed", seed, minimum=0)


def check_level(level) -> float:
  """A confidence level strictly between 0 and 1."""
  level = _as_scalar(level)
  if isinstance(level, (bool, np.bool_)) or not isinstance(level, numbers.Real):
    raise ValueError(f"level must be a float in (0, 1), got {level!r}.")
  level = float(level)
  if not 0.0 < level < 1.0:
    raise ValueError(f"level must be a float in (0, 1), got {level}.")
  return level


def integer_array(name: str, value) -> np.ndarray:
  """`value` as an int64 array; raises unless every entry is an integer >= 0."""
  array = np.asarray(value)
  if array.dtype == bool:
    raise ValueError(
        f"{name} must hold integer counts, got a bool array (pass counts, e.g. "
        "correct.sum(axis=-1), not the correctness flags)."
    )
  if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
    raise ValueError(f"{name} must hold integers, got dtype {array.dtype}.")
  if np.issubdtype(array.dtype, np.floating):
    if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
      raise ValueError(f"{name} must hold integers, got non-integer values.")
  if np.any(array < 0):
    raise ValueError(f"{name} must be >= 0, got a minimum of {array.min()}.")
  return array.astype(np.int64)


def probability_array(name: str, value, *, ndim: int | None = None) -> np.ndarray:
  """`value` as a float64 array of probabilities in [0, 1] (finite)."""
  array = np.asarray(value)
  if array.dtype == bool or not (
      np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
  ):
    raise ValueError(f"{name} must hold probabilities in [0, 1], got dtype {array.dtype}.")
  array = array.astype(np.float64)
  if ndim is not None and array.ndim != ndim:
    raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}.")
  if array.size == 0:
    raise ValueError(f"{name} must not be empty, got shape {array.shape}.")
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{name} must be finite (no NaN or inf).")
  if np.any(array < 0.0) or np.any(array > 1.0):
    raise ValueError(
        f"{name} must hold probabilities in [0, 1], got values in "
        f"[{array.min()}, {array.max()}]."
    )
  return array


def correctness_array(name: str, value, *, ndim: int) -> np.ndarray:
  """`value` as a bool array of the given ndim, no zero-length axis.

  Accepts bool arrays, and integer arrays holding only 0 and 1; anything else
  (floats, other integers) raises, since it is most likely a score or a count
  passed by mistake.
  """
  array = np.asarray(value)
  if array.dtype != bool:
    if not np.issubdtype(array.dtype, np.integer):
      raise ValueError(
          f"{name} must be a bool array (True = the sample is correct), got dtype {array.dtype}."
      )
    if np.any((array != 0) & (array != 1)):
      raise ValueError(f"{name} must be a bool array or hold only 0 and 1.")
    array = array.astype(bool)
  if array.ndim != ndim:
    raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}.")
  if 0 in array.shape:
    raise ValueError(f"{name} must have no empty axis, got shape {array.shape}.")
  return array


def positive_int_vector(name: str, value) -> np.ndarray:
  """A non-empty 1-D array of ints >= 1, or a ValueError naming `name`."""
  array = np.asarray(value)
  if array.ndim != 1 or array.size == 0:
    raise ValueError(f"{name} must be a non-empty 1-D list of ints, got shape {array.shape}.")
  values = integer_array(name, array)
  if np.any(values < 1):
    raise ValueError(f"{name} must hold ints >= 1, got {values.tolist()}.")
  return values
