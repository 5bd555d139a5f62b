"""Tests of the inverse-CDF token choice and the logit transforms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qmotto.sampling import inverse_cdf
from qmotto.sampling import logit_checks
from qmotto.sampling import transforms
from qmotto.sampling import LogitTransform

from . import reference


def test_tokens_follow_cdf_bins_and_rescale():
  weights = jnp.array([[0.5, 0.25, 0.125, 0.125]] * 9, jnp.float32)
  u = jnp.array([0.0, 0.1, 0.4999999, 0.5, 0.7, 0.75, 0.8, 0.875, 1 - 2**-24], jnp.float32)
  tokens, rescaled = inverse_cdf.invert_cdf(weights, u)
  np.testing.assert_array_equal(tokens, [0, 0, 0, 1, 1, 2, 2, 3, 3])
  expected = np.array([0.0, 0.2, 0.9999998, 0.0, 0.8, 0.0, 0.4, 0.0, 1 - 2**-21])
  np.testing.assert_allclose(rescaled, expected, atol=1e-6)


def test_zero_probability_tokens_are_never_chosen():
  # Zeros before, between and after; u exactly on every bin edge and at the top.
  w = np.array([0, 0, 1, 0, 0, 2, 0, 1, 0, 0], np.float32)
  edges = np.cumsum(w) / w.sum()
  u = np.concatenate([[0.0], edges[:-1], np.nextafter(edges[:-1], 0), [1 - 2**-24]]).astype(np.float32)
  u = np.clip(u, 0, 1 - 2**-24)
  tokens, _ = inverse_cdf.invert_cdf(jnp.tile(jnp.asarray(w), (len(u), 1)), jnp.asarray(u))
  assert set(np.asarray(tokens).tolist()) <= {2, 5, 7}


def test_cdf_total_below_one_is_handled():
  # Weights that do not sum to one: u near 1 still picks the last positive bin.
  w = jnp.array([[0.3, 0.3, 0.0]], jnp.float32)
  tokens, _ = inverse_cdf.invert_cdf(w, jnp.array([1 - 2**-24], jnp.float32))
  assert int(tokens[0]) == 1


def test_large_vocabulary_with_truncation_matches_searchsorted():
  # 256k tokens, most zeroed by top-k: the choice agrees with a float64
  # searchsorted except within float32 rounding of a bin edge.
  key = jax.random.key(0)
  logits = jax.random.normal(key, (16, 256_000)) * 3
  transform = LogitTransform(temperature=1.0, top_k=1000)
  w = transforms.token_weights(logits, transform)
  u = jax.random.uniform(jax.random.key(1), (16,))
  tokens, _ = inverse_cdf.invert_cdf(w, u)
  w64 = np.asarray(w, np.float64)
  cdf = np.cumsum(w64, -1) / w64.sum(-1, keepdims=True)
  ref = np.array([np.searchsorted(cdf[i], float(u[i]), side="right") for i in range(16)])
  tokens = np.asarray(tokens)
  assert (w64[np.arange(16), tokens] > 0).all()
  mismatch = tokens != ref
  for i in np.flatnonzero(mismatch):
    assert abs(cdf[i, min(tokens[i], ref[i])] - float(u[i])) < 1e-5


@pytest.mark.parametrize(
    "options",
    [
        dict(temperature=1.0),
        dict(temperature=0.5),
        dict(temperature=2.0, top_k=3),
        dict(temperature=1.0, top_p=0.7),
        dict(temperature=1.0, min_p=0.2),
        dict(temperature=0.8, top_k=5, top_p=0.9, min_p=0.05),
    ],
)
def test_token_weights_match_reference(options):
  logits = jax.random.normal(jax.random.key(4), (32, 12)) * 2
  w = np.asarray(transforms.token_weights(logits, LogitTransform(**options)), np.float64)
  w /= w.sum(-1, keepdims=True)
  np.testing.assert_allclose(w, reference.transformed_probs(np.asarray(logits), **options), atol=1e-6)


def test_greedy_is_argmax():
  logits = jax.random.normal(jax.random.key(2), (8, 50))
  tokens, _, _ = inverse_cdf.choose_tokens(logits, jnp.zeros(8), LogitTransform(temperature=0.0))
  np.testing.assert_array_equal(tokens, np.argmax(np.asarray(logits), -1))


def test_invalid_rows():
  logits = jnp.array([[0.0, 1.0], [jnp.nan, 0.0], [-jnp.inf, -jnp.inf], [-jnp.inf, 2.0]])
  np.testing.assert_array_equal(logit_checks.invalid_rows(logits), [False, True, True, False])


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(temperature=-1.0), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(top_k=2.5), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(min_p=-0.1), "min_p"),
    ],
)
def test_bad_transform_arguments(options, match):
  with pytest.raises(ValueError, match=match):
    LogitTransform(**options)


def test_two_level_search_matches_one_level():
  # Above BLOCK tokens the search runs over blocks first; it must pick the
  # same bins as the flat CDF (up to float32 rounding of the edges), with
  # zero-weight tokens and whole zero-weight blocks in between.
  vocab = inverse_cdf.BLOCK * 7 + 13
  key = jax.random.key(5)
  w = jnp.exp(jax.random.normal(key, (64, vocab)) * 2)
  w = jnp.where(jax.random.uniform(jax.random.key(6), w.shape) < 0.5, 0.0, w)
  w = w.at[:, inverse_cdf.BLOCK : 3 * inverse_cdf.BLOCK].set(0.0)  # empty blocks.
  u = jax.random.uniform(jax.random.key(7), (64,))
  u = u.at[0].set(0.0).at[1].set(1 - 2**-24)
  tokens, rescaled = inverse_cdf.invert_cdf(w, u)
  w64 = np.asarray(w, np.float64)
  cdf = np.cumsum(w64, -1) / w64.sum(-1, keepdims=True)
  tokens = np.asarray(tokens)
  assert (w64[np.arange(64), tokens] > 0).all()
  ref = np.array([min(np.searchsorted(cdf[i], float(u[i]), side="right"), vocab - 1) for i in range(64)])
  ref[1] = np.flatnonzero(w64[1])[-1]
  for i in np.flatnonzero(tokens != ref):
    assert abs(cdf[i, min(tokens[i], ref[i])] - float(u[i])) < 1e-5
  # Rescaled u is the position inside the chosen bin.
  lower = np.where(tokens > 0, cdf[np.arange(64), np.maximum(tokens - 1, 0)], 0.0)
  width = w64[np.arange(64), tokens] / w64.sum(-1)
  np.testing.assert_allclose(np.asarray(rescaled), np.clip((np.asarray(u) - lower) / width, 0, 1), atol=2e-3)


def test_two_level_exact_distribution():
  # Chi-square of 200k draws over a 1000-token distribution with zeros: the
  # two-level search gives the right probabilities (p-value threshold 1e-9;
  # a correct implementation fails with probability 1e-9).
  import scipy.stats

  vocab = 1000
  rng = np.random.default_rng(0)
  p = rng.dirichlet(np.full(50, 0.5))
  w = np.zeros(vocab)
  support = rng.choice(vocab, 50, replace=False)
  w[support] = p
  u = jax.random.uniform(jax.random.key(1), (200_000,))
  tokens, _ = jax.jit(inverse_cdf.invert_cdf)(jnp.broadcast_to(jnp.asarray(w, jnp.float32), (200_000, vocab)), u)
  counts = np.bincount(np.asarray(tokens), minlength=vocab)
  assert counts[w == 0].sum() == 0
  expected = w[support] * 200_000
  big = expected >= 5
  obs = np.concatenate([counts[support][big], [counts[support][~big].sum()]])
  exp = np.concatenate([expected[big], [expected[~big].sum()]])
  assert scipy.stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue > 1e-9
