"""Randomly shifted rank-1 lattices {(i z / n + D) mod 1}.

One uniform shift D in [0, 1)^s per set makes every point exactly uniform; the
points keep the lattice's even spacing. In one dimension (z = 1) this is the
evenly spaced set {i/n + D}: any arc of length p holds floor(n p) or
ceil(n p) points, so a bin of probability p is hit with probability
min(1, n p), the best any marginal-preserving sampler can do. Its stride
subsets {i = r mod n/m} are themselves shifted lattices of m points.

Generating vector for s > 1 (our choice): Korobov, z = (1, a, a**2, ...) mod n
with a unit a mod n chosen to minimise the weighted P_2 criterion (the
worst-case error in the Korobov space of smoothness alpha = 2, Sloan & Joe
1994) with product weights gamma_j = 1 / j**2 over the first few coordinates.
Two reasons:
  * In token mode coordinate t drives token t, so the projections that matter
    are windows of consecutive coordinates. For a Korobov vector every window
    (t, ..., t + w - 1) equals a**t (1, a, ..., a**(w-1)), the same lattice as
    the first window up to a unit factor, so the quality chosen for the first
    coordinates holds all along the sequence; a component-by-component vector
    gives later coordinates ever weaker projections.
  * Every z_j is a unit mod n, so every one-dimensional projection is the full
    evenly spaced lattice: each token position on its own is perfectly
    stratified.
The search is deterministic (no key), runs once per (n, s) at trace time and
is cached. It scores at most `_SEARCH_BUDGET` lattice points in all (512
candidates up to n = 2**14, fewer above: about a second at any n), and is
refused above `MAX_KOROBOV_N` points for s > 1 (one dimension needs no
search: any n that `check_num_points` allows).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from qmotto.qmc import _bits

# How many leading coordinates the criterion scores, and how many candidate
# multipliers it tries at most (spread over all units when there are more).
_CRITERION_DIMS = 8
_MAX_CANDIDATES = 512
# Points scored in all by one search (candidates x n), and rows scored at a
# time (small blocks stay in cache: the cost per point does not grow with n).
_SEARCH_BUDGET = _MAX_CANDIDATES << 14
_BLOCK_ROWS = 1 << 14
# Largest n of a lattice in s > 1 dimensions (at least 8 candidates).
MAX_KOROBOV_N = 1 << 20


def p2_criterion(n: int, z: np.ndarray) -> float:
  """Weighted P_2 of the rank-1 lattice (n, z), gamma_j = 1 / j**2 (smaller is better).

  Args:
    n: number of points.
    z: int[d] generating vector.

  Returns:
    The worst-case squared error of the lattice rule in the weighted Korobov
    space of smoothness 2 (Sloan & Joe 1994), the criterion `korobov_multiplier`
    minimises.
  """
  gamma = 1.0 / np.arange(1, len(z) + 1) ** 2
  total = 0.0
  for start in range(0, n, _BLOCK_ROWS):
    rows = np.arange(start, min(n, start + _BLOCK_ROWS))
    x = (rows[:, None] * z[None, :] % n) / n  # [rows, d]
    b2 = x * x - x + 1.0 / 6.0
    total += np.sum(np.prod(1.0 + gamma * 2.0 * math.pi**2 * b2, axis=1))
  return float(total / n - 1.0)


@functools.lru_cache(maxsize=None)
def korobov_multiplier(n: int, s: int) -> int:
  """The Korobov multiplier a used for an n-point lattice in s dimensions.

  Raises:
    ValueError: s > 1 and n > MAX_KOROBOV_N.
  """
  if s == 1 or n <= 2:
    return 1
  if n > MAX_KOROBOV_N:
    raise ValueError(
        f"lattice: n={n} points in s={s} > 1 dimensions (token mode) is beyond the supported "
        f"n <= 2**20 = {MAX_KOROBOV_N} (the generating-vector search); use a code-mode sampler "
        "(one dimension, no search) or sobol for larger groups."
    )
  d = min(s, _CRITERION_DIMS)
  max_candidates = max(1, min(_MAX_CANDIDATES, _SEARCH_BUDGET // n))
  units = [a for a in range(1, n // 2 + 1) if math.gcd(a, n) == 1]
  if len(units) > max_candidates:
    # Spread the candidates by the golden ratio, not on a regular grid: for
    # n = 2**m a grid step of 2**j keeps only a = 1 mod 2**(j+1), multipliers
    # close to the diagonal lattice (P_2 1e5 times worse at n = 2**20).
    spread = (math.sqrt(5.0) - 1.0) / 2.0
    units = sorted({units[int(((i + 0.5) * spread) % 1.0 * len(units))] for i in range(max_candidates)})
  best_a, best_value = 1, math.inf
  for a in units:
    z = np.array([pow(a, j, n) for j in range(d)], dtype=np.int64)
    value = p2_criterion(n, z)
    if value < best_value:
      best_a, best_value = a, value
  return best_a


def generating_vector(n: int, s: int) -> np.ndarray:
  """int64[s] Korobov generating vector (1, a, a**2, ...) mod n."""
  a = korobov_multiplier(n, s)
  z = np.empty(s, dtype=np.int64)
  z[0] = 1 % n if n > 1 else 0
  for j in range(1, s):
    z[j] = (z[j - 1] * a) % n
  return z


def lattice_words(
    key: jax.Array, n: int, s: int, *, index: jax.Array | None = None
) -> jax.Array:
  """uint32[m, s] words of the shifted lattice; see the module docstring."""
  n, s = _bits.check_shape("lattice", n, s)
  _bits.check_num_points("lattice", n)
  index = _bits.point_indices(n, index)
  z = jnp.asarray(generating_vector(n, s), dtype=jnp.uint32)  # [s]
  # i * z mod n: exact in uint32 for n <= 2**16; for larger powers of two the
  # wrap-around mod 2**32 is harmless because n divides 2**32.
  cell = (index[:, None] * z[None, :]) % jnp.uint32(n) if n > 1 else jnp.zeros((index.shape[0], s), jnp.uint32)
  offset = _bits.scale_to_words(cell, jnp.zeros_like(cell), n)  # [m, s]
  shift = _bits.per_dim_words(key, s)[:, 0]  # [s], one shift per set.
  return offset + shift[None, :]  # mod 2**32: an exactly uniform shift.


def lattice(key: jax.Array, n: int, s: int, *, index: jax.Array | None = None) -> jax.Array:
  """n points of a randomly shifted rank-1 lattice in [0, 1)^s.

  Args:
    key: PRNG key (draws the shift).
    n: number of points (any n <= 2**16, or a power of two).
    s: dimension.
    index: optional int[m] subset of point indices to generate.

  Returns:
    float32[m, s].
  """
  return _bits.words_to_unit_float(lattice_words(key, n, s, index=index))
