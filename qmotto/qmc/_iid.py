"""Independent uniforms: the baseline that reproduces ordinary sampling."""

from __future__ import annotations

import jax

from qmotto.qmc import _bits


def iid_words(key: jax.Array, n: int, s: int, *, index: jax.Array | None = None) -> jax.Array:
  """uint32[m, s] independent uniform words; point i depends only on (key, i)."""
  n, s = _bits.check_shape("iid", n, s)
  return _bits.per_point_words(key, _bits.point_indices(n, index), s)


def iid(key: jax.Array, n: int, s: int, *, index: jax.Array | None = None) -> jax.Array:
  """n independent uniform points in [0, 1)^s.

  Args:
    key: PRNG key.
    n: number of points in the set.
    s: dimension.
    index: optional int[m] subset of point indices to generate (default: all n).

  Returns:
    float32[m, s] (m = n by default).
  """
  return _bits.words_to_unit_float(iid_words(key, n, s, index=index))
