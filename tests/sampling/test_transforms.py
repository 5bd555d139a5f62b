"""LogitTransform takes Python, NumPy and JAX scalars alike; a tiny temperature gives the argmax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qmotto
from qmotto import sampling
from qmotto.sampling import inverse_cdf
from qmotto.sampling import transforms


@pytest.mark.parametrize("scalar", [float, np.float32, np.float64, jnp.float32], ids=lambda f: f.__name__)
def test_transform_accepts_every_kind_of_scalar_and_stays_hashable(scalar):
  transform = sampling.LogitTransform(
      temperature=scalar(0.7), top_k=np.int64(20), top_p=scalar(0.9), min_p=scalar(0.05)
  )
  assert isinstance(transform.top_p, float) and isinstance(transform.top_k, int)
  hash(transform)  # a static jit argument
  expected = sampling.LogitTransform(
      temperature=float(scalar(0.7)), top_k=20,
      top_p=float(scalar(0.9)), min_p=float(scalar(0.05)),
  )
  assert transform == expected


def test_jax_scalar_top_p_samples_like_a_python_float():
  # Was: "Non-hashable static arguments" from the jitted loop.
  logits = jnp.log(jnp.array([0.5, 0.3, 0.15, 0.05]))

  def logits_fn(tokens, t):
    return jnp.broadcast_to(logits, tokens.shape[:-1] + (4,))

  kwargs = dict(num_samples=8, length=3, sampler="lattice")
  with_jax = qmotto.sample_sequences(jax.random.key(1), logits_fn, top_p=jnp.float32(0.75), **kwargs)
  with_python = qmotto.sample_sequences(jax.random.key(1), logits_fn, top_p=float(np.float32(0.75)), **kwargs)
  np.testing.assert_array_equal(with_jax, with_python)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("temperature", "0.7", "temperature must be a finite float >= 0.0, got the string"),
        ("top_p", "0.9", "top_p must be a finite float > 0.0 and <= 1.0, got the string"),
        ("top_k", "50", "top_k must be an int >= 1, got the string"),
        ("min_p", "0.1", r"min_p must be a finite float in \[0.0, 1.0\], got the string"),
        ("top_k", 5.0, "top_k must be an int >= 1"),
        ("top_p", 0.0, "top_p must be a finite float > 0.0"),
        ("temperature", float("inf"), "temperature must be a finite float"),
        ("top_p", 1j, "top_p must be a finite float"),
    ],
)
def test_bad_values_are_value_errors_naming_the_field(field, value, match):
  with pytest.raises(ValueError, match=match):
    sampling.LogitTransform(**{field: value})


@pytest.mark.parametrize("temperature", [1e-40, 1e-45, 1e-60, 1e-30])
def test_a_temperature_that_overflows_logits_over_t_gives_the_argmax(temperature):
  # logits / T overflows float32 for these T; the limit distribution is the
  # argmax (ties shared), never the last token.
  logits = jnp.array([[0.0, 2.5, 1.0, -3.0, 2.0], [1.0, -1.0, 0.5, -jnp.inf, 0.9]], jnp.float32)
  transform = sampling.LogitTransform(temperature=temperature)
  weights = transforms.token_weights(logits, transform)
  np.testing.assert_array_equal(weights, np.eye(5, dtype=np.float32)[[1, 0]])
  u = jnp.array([0.999, 0.999], jnp.float32)
  tokens, _, logprobs = inverse_cdf.choose_tokens(logits, u, transform)
  np.testing.assert_array_equal(tokens, [1, 0])
  np.testing.assert_array_equal(logprobs, [0.0, 0.0])


def test_tiny_temperature_shares_tied_maxima_evenly():
  logits = jnp.array([[3.0, 1.0, 3.0, 3.0]], jnp.float32)
  weights = transforms.token_weights(logits, sampling.LogitTransform(temperature=1e-40))
  np.testing.assert_array_equal(weights, [[1.0, 0.0, 1.0, 1.0]])


@pytest.mark.parametrize("sampler", ["iid", "lattice", "sobol"])
def test_tiny_temperature_sequences_are_the_greedy_ones(sampler):
  table = jax.random.normal(jax.random.key(4), (6, 7))

  def logits_fn(tokens, t):
    previous = jnp.where(t > 0, jnp.take_along_axis(tokens, jnp.maximum(t - 1, 0)[None, None], -1)[..., 0], 0)
    return table[previous]

  tiny = qmotto.sample_sequences(jax.random.key(0), logits_fn, num_samples=4, length=5, sampler=sampler,
                                 temperature=1e-40)
  greedy = qmotto.sample_sequences(jax.random.key(0), logits_fn, num_samples=4, length=5, sampler=sampler,
                                   temperature=0.0)
  np.testing.assert_array_equal(tiny, greedy)
