"""Invalid logits get one clear error, eagerly and under jit, for every sampler and entry point.

A row with a NaN or a +inf, or with every logit -inf, is no distribution: the
inverse CDF would return an arbitrary token (before this check, +inf silently
picked the LAST token with NaN log-probabilities). Complex, bool and integer
logits and an empty vocabulary are refused when the loop is traced.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qmotto
from qmotto import decode
from qmotto import models
from qmotto.sampling import logit_checks
from tests.models import helpers

VOCAB = 5
BAD_ROWS = {
    "nan": [0.0, np.nan, 1.0, 0.5, 0.2],
    "+inf": [0.0, np.inf, 1.0, 0.5, 0.2],
    "+inf last": [0.0, 0.3, 1.0, 0.5, np.inf],
    "all -inf": [-np.inf] * VOCAB,
}


def _constant_logits_fn(row):
  row = jnp.asarray(row, jnp.float32)

  def logits_fn(tokens, t):
    return jnp.broadcast_to(row, tokens.shape[:-1] + (VOCAB,))

  return logits_fn


def test_invalid_rows_flags_nan_plus_inf_and_all_minus_inf_only():
  rows = jnp.array(list(BAD_ROWS.values()) + [[0.0, -np.inf, 1.0, -np.inf, 0.2]], jnp.float32)
  np.testing.assert_array_equal(logit_checks.invalid_rows(rows), [True, True, True, True, False])


@pytest.mark.parametrize("sampler", sorted(qmotto.SAMPLERS))
@pytest.mark.parametrize("row", sorted(BAD_ROWS))
def test_sample_sequences_refuses_invalid_logits_for_every_sampler(sampler, row):
  with pytest.raises(ValueError, match="logits_fn returned invalid logits: a row holds a NaN or a \\+inf"):
    qmotto.sample_sequences(
        jax.random.key(0), _constant_logits_fn(BAD_ROWS[row]), num_samples=4, length=2, sampler=sampler
    )


@pytest.mark.parametrize("row", ["+inf", "nan"])
def test_under_jit_the_error_is_a_jax_runtime_error_holding_the_message(row):
  # The documented behaviour (README, sampling.logit_checks): a compiled
  # program cannot raise a Python ValueError; JAX wraps it.
  logits_fn = _constant_logits_fn(BAD_ROWS[row])

  @jax.jit
  def sample(key):
    return qmotto.sample_sequences(key, logits_fn, num_samples=4, length=2)

  with pytest.raises(jax.errors.JaxRuntimeError, match="returned invalid logits"):
    jax.block_until_ready(sample(jax.random.key(0)))


@pytest.mark.parametrize(
    "dtype", [jnp.complex64, jnp.bool_, jnp.int32], ids=["complex64", "bool", "int32"]
)
def test_non_float_logits_are_refused_naming_logits_fn(dtype):
  def logits_fn(tokens, t):
    return jnp.ones(tokens.shape[:-1] + (VOCAB,), dtype)

  with pytest.raises(ValueError, match="logits_fn must return real floating-point logits"):
    qmotto.sample_sequences(jax.random.key(0), logits_fn, num_samples=4, length=2)


def test_non_float_logits_are_refused_under_jit_too():
  def logits_fn(tokens, t):
    return jnp.ones(tokens.shape[:-1] + (VOCAB,), jnp.complex64)

  with pytest.raises(ValueError, match="real floating-point logits"):
    jax.jit(lambda key: qmotto.sample_sequences(key, logits_fn, num_samples=4, length=2))(
        jax.random.key(0)
    )


def test_empty_vocabulary_is_refused():
  def logits_fn(tokens, t):
    return jnp.zeros(tokens.shape[:-1] + (0,), jnp.float32)

  with pytest.raises(ValueError, match="empty vocabulary"):
    qmotto.sample_sequences(jax.random.key(0), logits_fn, num_samples=4, length=2)


def test_wrong_logits_shape_is_refused():
  def logits_fn(tokens, t):
    return jnp.zeros((3, VOCAB), jnp.float32)

  with pytest.raises(ValueError, match=r"logits_fn must return float\[1, 4, vocab\] logits"):
    qmotto.sample_sequences(jax.random.key(0), logits_fn, num_samples=4, length=2)


def test_check_logits_false_skips_the_check():
  tokens = qmotto.sample_sequences_batched(
      jax.random.key(0), _constant_logits_fn(BAD_ROWS["+inf"]), num_groups=1, num_samples=4, length=2,
      sampling=qmotto.SamplingOptions.create("lattice", check_logits=False),
  )
  assert tokens.shape == (1, 4, 2)


@pytest.mark.parametrize("sampler", ["iid", "lattice", "sobol"])
def test_generate_refuses_a_plus_inf_logit(monkeypatch, sampler):
  model = helpers.random_model(3, max_seq_len=16)
  apply = models.Model.apply

  def apply_with_inf(self, *args, **kwargs):
    logits, cache = apply(self, *args, **kwargs)
    return logits.at[..., 2].set(jnp.inf), cache

  monkeypatch.setattr(models.Model, "apply", apply_with_inf)
  jax.clear_caches()  # the jitted generate loop must see the patched apply.
  try:
    with pytest.raises(ValueError, match="the model returned invalid logits: a row holds a NaN or a \\+inf"):
      decode.generate(
          jax.random.key(0), model, np.array([[1, 2, 3]], np.int32), np.array([3], np.int32),
          num_samples=4, max_new_tokens=3, sampling=sampler,
      )
  finally:
    jax.clear_caches()
