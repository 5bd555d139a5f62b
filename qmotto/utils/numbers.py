"""One check for numbers given as settings: Python, NumPy and JAX scalars alike.

A setting such as `num_samples` or `top_p` may arrive as `8`, `np.int64(8)`,
`jnp.int32(8)` or a 0-d array read from a config; all are accepted and come
back as a Python `int` or `float` (hashable, so it can be a static jit
argument). Anything else gets a `ValueError` that names the argument and the
allowed values: strings, bools, complex numbers, arrays with more than one
element, and traced values (a setting must be known when the program is
compiled).

    num_samples = numbers.check_int("num_samples", num_samples, minimum=1)
    top_p = numbers.check_float("top_p", top_p, minimum=0.0, maximum=1.0)
"""

from __future__ import annotations

import numbers as _abc

import numpy as np


def _scalar(name: str, value, expected: str):
  """`value` as a NumPy scalar (0-d), or a ValueError naming `name`."""
  if isinstance(value, (str, bytes)):
    raise ValueError(f"{name} must be {expected}, got the string {value!r}.")
  if value is None:
    raise ValueError(f"{name} must be {expected}, got None.")
  if isinstance(value, (_abc.Number, np.generic)):
    array = np.asarray(value)
  elif hasattr(value, "shape") and hasattr(value, "dtype"):
    if tuple(value.shape) != ():
      raise ValueError(f"{name} must be {expected} (a scalar), got an array of shape {value.shape}.")
    try:
      array = np.asarray(value)
    except Exception as error:  # A JAX tracer: the value is not known yet.
      raise ValueError(
          f"{name} must be {expected} known before compiling (a Python, NumPy or concrete "
          f"JAX scalar), got a traced value ({type(value).__name__}); pass it as a static "
          "argument."
      ) from error
  else:
    raise ValueError(f"{name} must be {expected}, got {value!r} ({type(value).__name__}).")
  # ml_dtypes' bfloat16 and float8 types are reals that NumPy does not class as floating.
  is_real = np.issubdtype(array.dtype, np.floating) or array.dtype.name.startswith(
      ("bfloat", "float")
  )
  if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or is_real):
    raise ValueError(f"{name} must be {expected}, got {value!r} (dtype {array.dtype}).")
  return array


def _range_text(minimum, maximum) -> str:
  if minimum is not None and maximum is not None:
    return f" in [{minimum}, {maximum}]"
  if minimum is not None:
    return f" >= {minimum}"
  if maximum is not None:
    return f" <= {maximum}"
  return ""


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
  """`value` as a Python int, if it is an integer scalar within [minimum, maximum].

  Args:
    name: the argument's name, for the error message.
    value: a Python int, a NumPy integer or a concrete 0-d integer JAX/NumPy
      array. Bools and floats (even 8.0) are refused: a float where a count is
      expected is most likely a mistake.
    minimum: the smallest allowed value, or None.
    maximum: the largest allowed value, or None.

  Raises:
    ValueError: naming `name` and the allowed range.
  """
  expected = "an int" + _range_text(minimum, maximum)
  array = _scalar(name, value, expected)
  if not np.issubdtype(array.dtype, np.integer):
    raise ValueError(f"{name} must be {expected}, got {value!r} (dtype {array.dtype}).")
  result = int(array)
  if (minimum is not None and result < minimum) or (maximum is not None and result > maximum):
    raise ValueError(f"{name} must be {expected}, got {result}.")
  return result


def check_float(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
  """`value` as a finite Python float within [minimum, maximum].

  Args:
    name: the argument's name, for the error message.
    value: a Python or NumPy int or float, or a concrete 0-d JAX/NumPy array.
    minimum: the smallest allowed value, or None.
    maximum: the largest allowed value, or None.
    exclusive_minimum: refuse `value == minimum` too (e.g. a temperature > 0).

  Raises:
    ValueError: naming `name` and the allowed range; also for NaN and inf.
  """
  if exclusive_minimum and minimum is not None:
    bounds = f" > {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
  else:
    bounds = _range_text(minimum, maximum)
  expected = "a finite float" + bounds
  result = float(_scalar(name, value, expected))
  if not np.isfinite(result):
    raise ValueError(f"{name} must be {expected}, got {result}.")
  too_low = minimum is not None and (
      result <= minimum if exclusive_minimum else result < minimum
  )
  if too_low or (maximum is not None and result > maximum):
    raise ValueError(f"{name} must be {expected}, got {result}.")
  return result
