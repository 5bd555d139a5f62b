"""Checks of config values shared by the trainers' `check_config`s.

Each returns the value as a Python number or raises a ValueError that names
the config field (`config.<name>`) and what it allows. Numbers may be Python,
NumPy or JAX scalars alike (`qmotto.utils.numbers`); strings, bools and
arrays are refused.
"""

from __future__ import annotations

from qmotto.utils import numbers


def require_int(config, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
  """config[name] as an int in [minimum, maximum], or ValueError naming config.<name>."""
  return numbers.check_int(f"config.{name}", config[name], minimum=minimum, maximum=maximum)


def require_float(config, name: str, minimum: float | None = None, *, exclusive_minimum: bool = False) -> float:
  """config[name] as a finite float >= minimum (> minimum if exclusive_minimum), or ValueError naming it."""
  return numbers.check_float(f"config.{name}", config[name], minimum=minimum, exclusive_minimum=exclusive_minimum)


def require_fraction(config, name: str) -> float:
  """config[name] as a float in [0, 1) (an Adam decay rate), or ValueError naming config.<name>."""
  value = numbers.check_float(f"config.{name}", config[name], minimum=0.0, maximum=1.0)
  if value >= 1:
    raise ValueError(f"config.{name} must be in [0, 1), got {value}.")
  return value
