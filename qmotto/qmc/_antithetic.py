"""Antithetic pairs (u, 1 - u)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qmotto.qmc import _bits


def antithetic_words(
    key: jax.Array, n: int, s: int, *, index: jax.Array | None = None
) -> jax.Array:
  """uint32[m, s]: points 2j and 2j + 1 are w and (2**32 - w) mod 2**32.

  The negated word is exactly uniform when w is (negation is a bijection of
  the words), so every point is uniform. With odd n the last point has no
  partner and is simply uniform.
  """
  n, s = _bits.check_shape("antithetic", n, s)
  index = _bits.point_indices(n, index)
  words = _bits.per_point_words(key, index // 2, s)  # [m, s]
  negated = jnp.uint32(0) - words  # wraps mod 2**32: 1 - u on the word grid.
  return jnp.where((index % 2 == 1)[:, None], negated, words)


def antithetic(key: jax.Array, n: int, s: int, *, index: jax.Array | None = None) -> jax.Array:
  """n points in [0, 1)^s in antithetic pairs (u, 1 - u).

  Args:
    key: PRNG key.
    n: number of points (an odd n leaves the last point unpaired).
    s: dimension.
    index: optional int[m] subset of point indices to generate.

  Returns:
    float32[m, s].
  """
  return _bits.words_to_unit_float(antithetic_words(key, n, s, index=index))
