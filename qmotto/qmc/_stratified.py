"""Stratified points: one point per stratum [j/n, (j+1)/n), strata order permuted.

In s > 1 dimensions every coordinate is stratified independently (Latin
hypercube sampling): coordinate d of point i lies in stratum pi_d(i), with an
independent uniformly random permutation pi_d per dimension and an independent
uniform position inside the stratum. Point i alone is therefore exactly uniform
on [0, 1)^s, and the n points together hit every stratum of every coordinate
exactly once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qmotto.qmc import _bits


def stratified_words(
    key: jax.Array, n: int, s: int, *, index: jax.Array | None = None
) -> jax.Array:
  """uint32[m, s] words of the stratified set; see the module docstring.

  The permutations cost O(n) per dimension on every device (they are shared by
  all points); the positions inside the strata are per point.
  """
  n, s = _bits.check_shape("stratified", n, s)
  _bits.check_num_points("stratified", n)
  index = _bits.point_indices(n, index)
  perm_key, jitter_key = jax.random.split(key)
  perms = jax.vmap(lambda d: jax.random.permutation(jax.random.fold_in(perm_key, d), n))(
      jnp.arange(s)
  )  # [s, n]
  strata = perms[:, index].T  # [m, s]
  jitter = _bits.per_point_words(jitter_key, index, s)  # [m, s]
  return _bits.scale_to_words(strata, jitter, n)


def stratified(key: jax.Array, n: int, s: int, *, index: jax.Array | None = None) -> jax.Array:
  """n stratified (Latin hypercube) points in [0, 1)^s.

  Args:
    key: PRNG key.
    n: number of points = number of strata per coordinate (any n <= 2**16,
      or a power of two).
    s: dimension.
    index: optional int[m] subset of point indices to generate.

  Returns:
    float32[m, s].
  """
  return _bits.words_to_unit_float(stratified_words(key, n, s, index=index))
