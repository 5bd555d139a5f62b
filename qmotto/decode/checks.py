"""Argument checks shared by the decode entry points (plain, with a model, sharded).

Each raises a ValueError that names the argument and what it allows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def check_count(name: str, value, minimum: int = 1) -> int:
  """`value` as an int, if it is a Python or NumPy int >= minimum (bools are refused)."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
  return int(value)


def check_token_id(name: str, value, vocab: int, allow_none: bool = False) -> None:
  """Raises unless `value` is a token id in [0, vocab) (or None where allowed)."""
  if value is None and allow_none:
    return
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < vocab:
    allowed = "None or " if allow_none else ""
    raise ValueError(f"{name} must be {allowed}an int in [0, vocab_size={vocab}), got {value!r}.")


def check_group_ids(group_ids, num_groups: int):
  """uint32[G] group ids: arange(G) for None, else `group_ids` checked to hold one id per group.

  A group's randomness is fold_in(key, its id), so ids must be given one per
  group. Concrete ids come back as a host (NumPy) array, so a sharded caller
  uploads each device's slice only; traced ids (under the caller's jit) stay
  traced.
  """
  if group_ids is None:
    return np.arange(num_groups, dtype=np.uint32)
  shape = np.shape(group_ids)
  if shape != (num_groups,):
    raise ValueError(f"group_ids must be int[{num_groups}] (one id per group), got shape {shape}.")
  if isinstance(group_ids, jax.core.Tracer):
    return group_ids.astype(jnp.uint32)
  return np.asarray(group_ids).astype(np.uint32)
