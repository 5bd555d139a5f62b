"""Checks of config values shared by the trainers' `check_config`s.

Each raises (or lets the caller raise) a ValueError that names the config
field and what it allows.
"""

from __future__ import annotations

import math

import numpy as np


def is_int(x) -> bool:
  """A Python or NumPy int (bools are not)."""
  return not isinstance(x, bool) and isinstance(x, (int, np.integer))


def is_real(x) -> bool:
  """A finite Python or NumPy number (bools are not)."""
  return not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating)) and math.isfinite(x)


def require_int(config, name: str, minimum: int) -> None:
  """Raises ValueError unless config[name] is an int >= minimum."""
  value = config[name]
  if not is_int(value) or value < minimum:
    raise ValueError(f"config.{name} must be an int >= {minimum}, got {value!r}.")
