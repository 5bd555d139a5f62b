"""Scrambled Sobol points (Joe-Kuo direction numbers).

Point i is the Gray-code-ordered Sobol point x(g(i)), g(i) = i ^ (i >> 1), the
order `scipy.stats.qmc.Sobol` uses, so the unscrambled points agree with it
bit for bit; the first 2**m points are the same set in either order. Point i
is computed on its own (XOR of the direction numbers picked by the bits of
g(i)), so a device can make only its slice.

Randomizations (`scramble`):
  * "owen": nested uniform scrambling. Digit j of a coordinate is flipped by a
    random bit that depends on the dimension and on all digits above j; the
    bits come from a keyed 32-bit hash of (dimension seed, tree node). The top
    24 digits are scrambled, as many as a float32 in [0, 1) can hold, so
    every point is exactly uniform on the float32 grid 2**-24.
  * "lms": a random lower-triangular binary matrix with unit diagonal (linear
    matrix scramble, applied to the direction numbers) followed by a digital
    shift: an XOR with a uniformly random word per dimension. The shift's bits
    are fair coin flips (from `jax.random.bits`); that alone makes each point
    exactly uniform.
  * "none": the deterministic Sobol points (the key is ignored). Not uniform
    point by point; for checks against references only.

Dimensions: the direction numbers shipped with SciPy (new-joe-kuo-6.21201)
cover MAX_DIM = 21201 coordinates. Beyond that, `pad="iid"` fills the extra
coordinates with independent uniforms (each point stays exactly uniform; the
extra coordinates are simply not low-discrepancy); `pad="none"` (default)
raises.

Subsets: with 2**L points, every aligned block of 2**j consecutive indices is
a digitally shifted Sobol net; Owen and LMS+shift scrambling absorb digital
shifts, so each block is itself a randomized Sobol set of 2**j points.

Extensible: point i depends on (key, i) only, never on n. The unscrambled
point XORs the direction numbers picked by the bits of g(i), and for i < n
those bits are all below log2(n), so n only bounds the loop over them; the
scrambles (per-dimension seeds, matrices and shifts from the key) and the iid
padding (per point) do not see n either. So the first 2**m points of a set of
any n >= 2**m are exactly the set of 2**m points, a scrambled (t, m, s)-net
(t = 0 for the first two coordinates; `tests/qmc` checks both), and a group
can be drawn in rounds.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from qmotto.qmc import _bits
from qmotto.qmc import _iid as iid_lib

MAX_DIM = 21201
BITS = 32
SCRAMBLES = ("owen", "lms", "none")
PADS = ("none", "iid")


@functools.lru_cache(maxsize=1)
def _joe_kuo_table() -> tuple[np.ndarray, np.ndarray]:
  path = os.path.join(os.path.dirname(scipy.stats.__file__), "_sobol_direction_numbers.npz")
  with np.load(path) as data:
    return data["poly"].astype(np.int64), data["vinit"].astype(np.int64)


@functools.lru_cache(maxsize=8)
def direction_numbers(s: int) -> np.ndarray:
  """uint32[s, 32] direction numbers: V[d, k] is the word of bit k of the index.

  Bratley & Fox's recurrence on the Joe-Kuo primitive polynomials and initial
  values, as in SciPy's `_sobol.pyx`.
  """
  if not 1 <= s <= MAX_DIM:
    raise ValueError(f"sobol: s must be in [1, {MAX_DIM}], got {s}.")
  poly, vinit = _joe_kuo_table()
  v = np.zeros((s, BITS), dtype=np.int64)
  v[0, :] = 1
  for d in range(1, s):
    p = int(poly[d])
    m = p.bit_length() - 1
    v[d, :m] = vinit[d, :m]
    for j in range(m, BITS):
      new = v[d, j - m]
      pow2 = 1
      for k in range(m):
        pow2 <<= 1
        if (p >> (m - 1 - k)) & 1:
          new ^= pow2 * v[d, j - k - 1]
      v[d, j] = new
  shifts = BITS - 1 - np.arange(BITS)
  return (v << shifts[None, :]).astype(np.uint32)


def _owen_scramble(words: jax.Array, seeds: jax.Array) -> jax.Array:
  """Nested uniform scramble of the top 24 digits.

  Args:
    words: uint32[m, s] unscrambled points.
    seeds: uint32[s, 2] per-dimension seeds.

  Returns:
    uint32[m, s].
  """
  flips = jnp.zeros_like(words)
  for j in range(_bits.FLOAT_BITS):
    # Heap index of the tree node at depth j: a leading 1, then the j digits
    # above digit j. Unique across depths, < 2**(j + 1).
    node = (words >> (32 - j)) | jnp.uint32(1 << j) if j else jnp.ones_like(words)
    h = _bits.hash32(node ^ seeds[None, :, 0])
    h = _bits.hash32(h ^ seeds[None, :, 1])
    flips = flips | ((h >> 31) << (31 - j))
  return words ^ flips


def _linear_matrix_scramble(v: jax.Array, key: jax.Array) -> jax.Array:
  """Multiplies each dimension's direction numbers by a random lower-triangular
  binary matrix with unit diagonal (digits ordered most significant first).

  Args:
    v: uint32[s, 32] direction numbers.
    key: PRNG key.

  Returns:
    uint32[s, 32].
  """
  s = v.shape[0]
  rand = jax.random.bits(key, (s, BITS), jnp.uint32)  # column j of dimension d.
  col_bit = jnp.uint32(1) << (BITS - 1 - jnp.arange(BITS, dtype=jnp.uint32))  # [32]
  below = col_bit - jnp.uint32(1)  # the less significant digits.
  columns = col_bit[None, :] | (rand & below[None, :])  # [s, 32]: column j.
  digits = jnp.arange(BITS, dtype=jnp.uint32)
  has_digit = ((v[:, :, None] >> (BITS - 1 - digits)) & 1).astype(bool)  # [s, 32 numbers, 32 digits]
  # One XOR reduction over the digits: an unrolled XOR chain gets fused into
  # every point's computation by XLA and recomputed per point.
  picked = jnp.where(has_digit, columns[:, None, :], jnp.uint32(0))  # [s, 32, 32]
  return jax.lax.reduce(picked, jnp.uint32(0), jax.lax.bitwise_xor, (2,))


def sobol_words(
    key: jax.Array,
    n: int,
    s: int,
    *,
    scramble: str = "owen",
    pad: str = "none",
    index: jax.Array | None = None,
) -> jax.Array:
  """uint32[m, s] words of the (scrambled) Sobol set; see the module docstring."""
  n, s = _bits.check_shape("sobol", n, s)
  if not _bits.is_power_of_two(n) or n > (1 << BITS):
    raise ValueError(
        f"sobol: n must be a power of two (a Sobol set is the first 2**m points), got n={n}."
    )
  if scramble not in SCRAMBLES:
    raise ValueError(f"sobol: unknown scramble {scramble!r}; allowed: {SCRAMBLES}.")
  if pad not in PADS:
    raise ValueError(f"sobol: unknown pad {pad!r}; allowed: {PADS}.")
  if s > MAX_DIM and pad == "none":
    raise ValueError(
        f"sobol: s={s} exceeds the {MAX_DIM} dimensions with direction numbers; "
        "pass pad='iid' to fill the extra coordinates with independent uniforms."
    )
  index = _bits.point_indices(n, index)
  s_sobol = min(s, MAX_DIM)
  perm_key, shift_key, pad_key = jax.random.split(key, 3)
  v = jnp.asarray(direction_numbers(s_sobol))  # [s, 32]
  if scramble == "lms":
    v = _linear_matrix_scramble(v, perm_key)
  gray = index ^ (index >> 1)  # [m]
  m_bits = max(1, (n - 1).bit_length())
  words = jnp.zeros((index.shape[0], s_sobol), jnp.uint32)
  for k in range(m_bits):
    bit = ((gray >> k) & 1).astype(bool)[:, None]
    words = words ^ jnp.where(bit, v[None, :, k], jnp.uint32(0))
  if scramble == "lms":
    words = words ^ _bits.per_dim_words(shift_key, s_sobol)[None, :, 0]
  elif scramble == "owen":
    words = _owen_scramble(words, _bits.per_dim_words(perm_key, s_sobol, 2))
  if s > MAX_DIM:
    extra = iid_lib.iid_words(pad_key, n, s - MAX_DIM, index=index)
    words = jnp.concatenate([words, extra], axis=1)
  return words


def sobol(
    key: jax.Array,
    n: int,
    s: int,
    *,
    scramble: str = "owen",
    pad: str = "none",
    index: jax.Array | None = None,
) -> jax.Array:
  """The first n = 2**m points of a randomized Sobol sequence in [0, 1)^s.

  Args:
    key: PRNG key (ignored when scramble="none").
    n: number of points, a power of two.
    s: dimension, at most MAX_DIM unless pad="iid".
    scramble: "owen" (nested uniform), "lms" (linear matrix scramble + digital
      shift) or "none".
    pad: "none" or "iid": what fills coordinates beyond MAX_DIM.
    index: optional int[m] subset of point indices to generate.

  Returns:
    float32[m, s].
  """
  return _bits.words_to_unit_float(
      sobol_words(key, n, s, scramble=scramble, pad=pad, index=index)
  )
