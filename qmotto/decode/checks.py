"""Argument checks shared by the decode entry points (plain, with a model, sharded).

Each raises a ValueError that names the argument and what it allows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from qmotto.utils import numbers

# A group's randomness is fold_in(key, id) with a uint32 id.
MAX_GROUP_ID = 2**32 - 1


def check_count(name: str, value, minimum: int = 1) -> int:
  """`value` as an int, if it is a Python, NumPy or JAX integer >= minimum (bools are refused)."""
  return numbers.check_int(name, value, minimum=minimum)


def check_token_id(name: str, value, vocab: int, allow_none: bool = False) -> int | None:
  """`value` as an int; raises unless it is a token id in [0, vocab) (or None where allowed)."""
  if value is None and allow_none:
    return None
  try:
    return numbers.check_int(name, value, minimum=0, maximum=vocab - 1)
  except ValueError:
    allowed = "None or " if allow_none else ""
    raise ValueError(
        f"{name} must be {allowed}an int in [0, vocab_size={vocab}), got {value!r}."
    ) from None


def check_group_ids(group_ids, num_groups: int):
  """uint32[G] group ids: arange(G) for None, else `group_ids` checked to hold one id per group.

  A group's randomness is fold_in(key, its uint32 id), so ids must be
  integers in [0, 2**32), one per group: a float id would be truncated and an
  id >= 2**32 would wrap, and either way two groups could silently share
  their randomness. Equal ids given on purpose give equal samples (a caller
  pads a batch to a fixed shape by repeating its last group). Concrete ids come back as a host (NumPy)
  array, so a sharded caller uploads each device's slice only; traced ids
  (under the caller's jit) stay traced, checked for dtype and shape only.
  """
  if group_ids is None:
    return np.arange(num_groups, dtype=np.uint32)
  shape = np.shape(group_ids)
  if shape != (num_groups,):
    raise ValueError(f"group_ids must be int[{num_groups}] (one id per group), got shape {shape}.")
  dtype = jnp.result_type(group_ids) if isinstance(group_ids, jax.Array) else np.asarray(group_ids).dtype
  if dtype == bool or not jnp.issubdtype(dtype, jnp.integer):
    raise ValueError(f"group_ids must hold integers in [0, 2**32), got dtype {dtype}.")
  if isinstance(group_ids, jax.core.Tracer):
    return group_ids.astype(jnp.uint32)
  ids = np.asarray(group_ids)
  if ids.size and (ids.min() < 0 or ids.max() > MAX_GROUP_ID):
    raise ValueError(
        f"group_ids must hold integers in [0, 2**32), got values in [{ids.min()}, {ids.max()}]."
    )
  return ids.astype(np.uint32)
