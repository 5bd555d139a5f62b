"""Integer helpers shared by the point sets.

Every construction works on ``uint32`` words, the binary expansion of a point in
[0, 1): word ``x`` stands for ``x / 2**32``. Integer arithmetic keeps shifts and
scrambles exact; only the last step turns a word into ``float32``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from qmotto.utils import numbers

# float32 has a 24-bit significand: the top 24 bits of a word map to [0, 1)
# exactly, and a uniform word gives a uniform float on the 2**-24 grid.
FLOAT_BITS = 24
_INV_2_24 = np.float32(2.0**-FLOAT_BITS)


def words_to_unit_float(words: jax.Array) -> jax.Array:
  """uint32 words -> float32 in [0, 1), exactly uniform when the words are.

  Args:
    words: uint32[...].

  Returns:
    float32[...] on the grid {0, 2**-24, ..., 1 - 2**-24}.
  """
  return (words >> (32 - FLOAT_BITS)).astype(jnp.float32) * _INV_2_24


def unit_float_to_words(u: jax.Array) -> jax.Array:
  """float32 in [0, 1) -> uint32 word with the same top 24 bits (floor)."""
  scaled = jnp.floor(u * np.float32(2.0**FLOAT_BITS))
  scaled = jnp.clip(scaled, 0.0, np.float32(2.0**FLOAT_BITS - 1))
  return scaled.astype(jnp.uint32) << (32 - FLOAT_BITS)


def hash32(x: jax.Array) -> jax.Array:
  """A strong 32-bit integer mixer ("lowbias32", C. Wellons); uint32 -> uint32."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * jnp.uint32(0x846CA68B)
  x = x ^ (x >> 16)
  return x


def is_power_of_two(n: int) -> bool:
  return n >= 1 and (n & (n - 1)) == 0


def check_shape(name: str, n: int, s: int) -> tuple[int, int]:
  """(n, s) as Python ints: the static size arguments shared by all point sets, checked."""
  return (numbers.check_int(f"{name}: n", n, minimum=1), numbers.check_int(f"{name}: s", s, minimum=1))


def point_indices(n: int, index: jax.Array | None) -> jax.Array:
  """uint32[m]: the indices of the points to generate, all n by default, else `index`.

  A concrete `index` must hold integers in [0, n) (an index past n would wrap
  into another point, or silently repeat one). A traced index (under the
  caller's jit) is checked for its dtype only.
  """
  if index is None:
    return jnp.arange(n, dtype=jnp.uint32)
  dtype = jnp.result_type(index) if isinstance(index, jax.Array) else np.asarray(index).dtype
  if dtype == bool or not jnp.issubdtype(dtype, jnp.integer):
    raise ValueError(f"index must hold integers in [0, n={n}), got dtype {dtype}.")
  if jnp.ndim(index) != 1:
    raise ValueError(f"index must be a 1-D int[m] array of point indices, got shape {jnp.shape(index)}.")
  if not isinstance(index, jax.core.Tracer):
    values = np.asarray(index)
    if values.size and (values.min() < 0 or values.max() >= n):
      raise ValueError(
          f"index must hold integers in [0, n={n}), got values in [{values.min()}, {values.max()}]."
      )
  return jnp.asarray(index).astype(jnp.uint32)


def per_point_words(key: jax.Array, index: jax.Array, s: int) -> jax.Array:
  """s fresh uniform words per point, a function of (key, point index) only.

  Generating them from ``fold_in(key, i)`` (not one big draw) is what lets a
  device compute only its own slice of the points and still agree bit for bit
  with a single-device run.

  Args:
    key: a PRNG key.
    index: uint32[m] point indices.
    s: number of words per point.

  Returns:
    uint32[m, s].
  """
  return jax.vmap(lambda i: jax.random.bits(jax.random.fold_in(key, i), (s,), jnp.uint32))(index)


def per_dim_words(key: jax.Array, s: int, count: int = 1) -> jax.Array:
  """`count` uniform words per dimension, shared by all points: uint32[s, count]."""
  return jax.random.bits(key, (s, count), jnp.uint32)


# Largest n for which `scale_to_words` stays in 32-bit integer arithmetic when
# n is not a power of two (its products must fit a uint32).
MAX_GENERAL_N = 1 << 16


def check_num_points(name: str, n: int) -> None:
  """Raises ValueError unless a stratified or lattice set of n points is exact in uint32.

  Args:
    name: what to name in the message (a point set or a sampler).
    n: the number of points: a power of two <= 2**31, or any n <= MAX_GENERAL_N.
  """
  if not (is_power_of_two(n) and n <= (1 << 31)) and n > MAX_GENERAL_N:
    raise ValueError(
        f"{name}: n={n} is supported when n is a power of two (<= 2**31) or "
        f"n <= {MAX_GENERAL_N}."
    )


def scale_to_words(cell: jax.Array, frac: jax.Array, n: int) -> jax.Array:
  """floor((cell * 2**32 + frac) / n) in exact uint32 arithmetic.

  Maps cell c in [0, n) plus a word `frac` (a position inside the cell) to the
  word of the point (c + frac / 2**32) / n. For power-of-two n this is a shift;
  otherwise 2**32 = q n + r and every partial product stays below 2**32 for
  n <= 2**16 (checked by `check_num_points`).

  Args:
    cell: uint32[...] in [0, n).
    frac: uint32[...] any word.
    n: static number of cells.

  Returns:
    uint32[...].
  """
  cell = cell.astype(jnp.uint32)
  frac = frac.astype(jnp.uint32)
  if n == 1:
    return frac
  if is_power_of_two(n):
    m = n.bit_length() - 1
    return (cell << (32 - m)) | (frac >> m)
  q, r = divmod(1 << 32, n)
  nn = jnp.uint32(n)
  a = cell * jnp.uint32(r)  # < n * n <= 2**32.
  carry = ((a % nn) + (frac % nn)) // nn
  return cell * jnp.uint32(q) + a // nn + frac // nn + carry
