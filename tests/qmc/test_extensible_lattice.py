"""Tests of the extensible lattice (qmc.extensible_lattice) and of which point sets are extensible."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from qmotto import qmc


def _bit_reverse(i: int) -> int:
  return int(f"{i:032b}"[::-1], 2)


def test_radical_inverse_is_the_32_bit_reversal():
  rng = np.random.default_rng(0)
  index = np.concatenate([np.arange(70), rng.integers(0, 2**32, 200, dtype=np.uint64)]).astype(np.uint32)
  got = np.asarray(qmc.radical_inverse(jnp.asarray(index)))
  assert got.dtype == np.uint32
  np.testing.assert_array_equal(got, [_bit_reverse(int(i)) for i in index])
  # phi_2(b 2**j + r) = phi_2(r) + phi_2(b) / 2**j for r < 2**j: aligned blocks are shifted lattices.
  j, b, r = 5, np.arange(1, 40, dtype=np.uint32), np.arange(32, dtype=np.uint32)
  block = np.asarray(qmc.radical_inverse(jnp.asarray((b[:, None] << j) + r[None, :])))
  expected = np.asarray(qmc.radical_inverse(jnp.asarray(r)))[None, :] + (np.asarray(qmc.radical_inverse(jnp.asarray(b))) >> j)[:, None]
  np.testing.assert_array_equal(block, expected)


def test_point_i_is_bit_reversal_plus_one_shift():
  words = np.asarray(qmc.extensible_lattice_words(jax.random.key(3), 64, 1))[:, 0].astype(np.int64)
  shift = words[0]  # phi_2(0) = 0.
  np.testing.assert_array_equal(words, (np.array([_bit_reverse(i) for i in range(64)]) + shift) % 2**32)
  other = np.asarray(qmc.extensible_lattice_words(jax.random.key(4), 64, 1))[:, 0].astype(np.int64)
  assert other[0] != shift and ((other - words) % 2**32 == (other[0] - shift) % 2**32).all()  # one shift per set.


def _cyclic_gaps(words: np.ndarray) -> np.ndarray:
  words = np.sort(words.astype(np.int64))
  return np.diff(np.append(words, words[0] + 2**32))


@pytest.mark.parametrize("seed", [0, 1])
def test_prefixes_and_aligned_blocks_are_shifted_lattices(seed):
  # The first 2**j points, and every aligned block of 2**j, are evenly spaced:
  # sorted cyclic gaps of exactly 2**(32 - j) words.
  n = 64
  words = np.asarray(qmc.extensible_lattice_words(jax.random.key(seed), n, 1))[:, 0]
  for j in range(7):
    m = 2**j
    for start in range(0, n, m):
      np.testing.assert_array_equal(_cyclic_gaps(words[start : start + m]), 2 ** (32 - j), err_msg=(j, start))
  # The whole set is the natural-order lattice of 64 points (another order, another shift).
  natural = np.asarray(qmc.lattice_words(jax.random.key(seed), n, 1))[:, 0]
  np.testing.assert_array_equal(_cyclic_gaps(natural), _cyclic_gaps(words))


def test_first_points_do_not_depend_on_n():
  key = jax.random.key(5)
  small = qmc.extensible_lattice_words(key, 16, 1)
  for n in (32, 1024, 2**20):
    np.testing.assert_array_equal(qmc.extensible_lattice_words(key, n, 1, index=np.arange(16)), small)
  np.testing.assert_array_equal(
      qmc.extensible_lattice(key, 64, index=np.array([3, 40])), qmc.extensible_lattice(key, 64)[np.array([3, 40])]
  )


INDEX_BASED = {
    "iid": qmc.iid_words,
    "antithetic": qmc.antithetic_words,
    "sobol_owen": functools.partial(qmc.sobol_words, scramble="owen"),
    "sobol_lms": functools.partial(qmc.sobol_words, scramble="lms"),
}


@pytest.mark.parametrize("name", sorted(INDEX_BASED))
def test_index_based_sets_are_extensible(name):
  """Point i of these sets depends on (key, i) only: the first 16 points of
  a set of 256 are the set of 16. (Sobol's padding beyond its direction
  numbers is `iid_words` of the point index, covered by "iid".)"""
  fn = INDEX_BASED[name]
  s = 5
  key = jax.random.key(6)
  index = np.array([0, 1, 2, 3, 7, 15])
  np.testing.assert_array_equal(fn(key, 256, s, index=index), fn(key, 16, s, index=index))


@pytest.mark.parametrize("scramble", ["owen", "lms"])
def test_sobol_prefix_of_a_larger_set_is_a_0m2_net(scramble):
  # The first 2**m points of a 2**10-point set: a (0, m, 2)-net (every
  # elementary box of volume 2**-m holds one point).
  m = 5
  x = np.asarray(qmc.sobol(jax.random.key(2), 1024, 2, scramble=scramble, index=np.arange(2**m)), np.float64)
  for j in range(m + 1):
    cells = np.floor(x[:, 0] * 2**j).astype(int) * 2 ** (m - j) + np.floor(x[:, 1] * 2 ** (m - j)).astype(int)
    assert len(set(cells.tolist())) == 2**m, (scramble, j)


@pytest.mark.parametrize("fn", [qmc.lattice_words, qmc.stratified_words], ids=["lattice", "stratified"])
def test_natural_lattice_and_stratified_depend_on_n(fn):
  key = jax.random.key(6)
  index = np.arange(16)
  assert not np.array_equal(fn(key, 256, 1, index=index), fn(key, 16, 1, index=index))


def test_every_point_is_uniform():
  """Kolmogorov-Smirnov per point over 4000 independent keys, for points 0,
  1, 2, 3, 5, 8, 13 and 63 of a 64-point set. Under uniformity each p-value
  is U(0, 1): P(any of the 8 < 1e-8) <= 8e-8 < 1e-6. The check has power:
  points squeezed into [0, 0.95) fail it (KS distance 0.05 at 4000 draws
  gives p ~ 1e-9), as tests/qmc/test_point_sets.py shows."""
  keys = jax.random.split(jax.random.key(0), 4000)
  index = np.array([0, 1, 2, 3, 5, 8, 13, 63])
  x = np.asarray(jax.jit(jax.vmap(lambda k: qmc.extensible_lattice(k, 64, 1, index=index)))(keys), np.float64)
  for i, point in enumerate(index):
    p = scipy.stats.kstest(x[:, i, 0], "uniform").pvalue
    assert p > 1e-8, (point, p)
  assert scipy.stats.kstest(x[:, 3, 0] * 0.95, "uniform").pvalue < 1e-8  # power.


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: qmc.extensible_lattice(jax.random.key(0), 12), r"n must be a power of two .* got n=12"),
        (lambda: qmc.extensible_lattice(jax.random.key(0), 8, 2), r"s must be 1 .* got s=2"),
        (lambda: qmc.extensible_lattice(jax.random.key(0), 0), r"n must be an int >= 1"),
        (lambda: qmc.extensible_lattice(jax.random.key(0), 8, index=np.array([8])), r"index must hold integers in \[0, n=8\)"),
        (lambda: qmc.extensible_lattice(jax.random.key(0), 8, index=np.array([1.0])), r"index must hold integers"),
    ],
)
def test_bad_input(call, match):
  with pytest.raises(ValueError, match=match):
    call()
