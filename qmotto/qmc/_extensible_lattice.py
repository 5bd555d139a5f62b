"""The extensible 1-D lattice: a shifted lattice in radical-inverse (van der Corput) order.

Point i is (phi_2(i) + D) mod 1, where phi_2(i) = 0.b_0 b_1 b_2 ... in binary
for i = b_0 + 2 b_1 + 4 b_2 + ... (the van der Corput radical inverse: the
bits of i mirrored about the binary point) and D is one uniform shift per set.
On words, phi_2(i) is the 32-bit reversal of i (`radical_inverse`) and the
shift is a uniform word added mod 2**32, so every point is exactly uniform.

Extensible: point i depends on i and the key only, not on the set size n
(n only bounds the index), so the first m points of a set of n are exactly
the set of m. For n = 2**L:
  * {phi_2(i) : i < 2**j} = {l / 2**j : l < 2**j}, so the first 2**j points
    are the shifted lattice of 2**j points, evenly spaced like `lattice`'s
    one-dimensional sets;
  * more generally every aligned block [b 2**j, (b + 1) 2**j) is a shifted
    2**j-point lattice: phi_2(b 2**j + r) = phi_2(r) + phi_2(b) / 2**j for
    r < 2**j, the block's own shift being D + phi_2(b) / 2**j (uniform with D).
So a group drawn in rounds of 2**j points is, after every round, a prefix of
one group of the final size, and each power-of-two prefix is a group on its
own (the "dyadic" group structure of Sobol sets). It is the same point set
as the one-dimensional `lattice` of n = 2**L points, in another order.

One dimension only: a rank-1 lattice in s > 1 dimensions needs a generating
vector, and the Korobov vectors of `lattice` are chosen for one n.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qmotto.qmc import _bits

# Bit-reversal masks: swap neighbouring bits, then pairs, nibbles, bytes, halves.
_REVERSE_STEPS = ((1, 0x55555555), (2, 0x33333333), (4, 0x0F0F0F0F), (8, 0x00FF00FF))


def radical_inverse(index: jax.Array) -> jax.Array:
  """uint32[...]: phi_2(i) as a word, the bits of i reversed over 32 bits.

  Word w stands for w / 2**32, so this is the van der Corput radical inverse
  of i in base 2, exact for every i < 2**32.

  Args:
    index: uint32[...] point indices (other integer dtypes are cast).

  Returns:
    uint32[...] with bit k of the result equal to bit 31 - k of `index`.
  """
  x = jnp.asarray(index).astype(jnp.uint32)
  for shift, mask in _REVERSE_STEPS:
    mask = jnp.uint32(mask)
    x = ((x >> shift) & mask) | ((x & mask) << shift)
  return (x >> 16) | (x << 16)


def check_extensible_lattice_shape(n: int, s: int) -> tuple[int, int]:
  """(n, s) as Python ints; raises unless n is a power of two <= 2**32 and s == 1."""
  n, s = _bits.check_shape("extensible_lattice", n, s)
  if not _bits.is_power_of_two(n) or n > (1 << 32):
    raise ValueError(
        f"extensible_lattice: n must be a power of two (the first 2**m points of the radical-inverse "
        f"sequence are a shifted lattice), got n={n}."
    )
  if s != 1:
    raise ValueError(
        f"extensible_lattice: s must be 1 (a one-dimensional lattice, for code-mode samplers), got s={s}."
    )
  return n, s


def extensible_lattice_words(
    key: jax.Array, n: int, s: int = 1, *, index: jax.Array | None = None
) -> jax.Array:
  """uint32[m, 1] words (radical_inverse(i) + D) mod 2**32; see the module docstring.

  Args:
    key: PRNG key (draws the shift word D).
    n: number of points in the set, a power of two (point i does not depend on it).
    s: dimension, 1.
    index: optional int[m] subset of point indices in [0, n) (default: all n).

  Returns:
    uint32[m, 1].
  """
  n, s = check_extensible_lattice_shape(n, s)
  index = _bits.point_indices(n, index)  # [m]
  shift = _bits.per_dim_words(key, s)[:, 0]  # [1], one shift per set.
  return radical_inverse(index)[:, None] + shift[None, :]  # mod 2**32: an exactly uniform shift.


def extensible_lattice(
    key: jax.Array, n: int, s: int = 1, *, index: jax.Array | None = None
) -> jax.Array:
  """n points of the shifted 1-D lattice in radical-inverse order, in [0, 1).

  Args:
    key: PRNG key (draws the shift).
    n: number of points, a power of two; the first 2**j of them are a
      shifted lattice of 2**j points for every 2**j <= n.
    s: dimension, 1.
    index: optional int[m] subset of point indices to generate.

  Returns:
    float32[m, 1].
  """
  return _bits.words_to_unit_float(extensible_lattice_words(key, n, s, index=index))
