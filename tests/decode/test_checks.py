"""Argument checks of the decode entry points: numbers of any kind, group ids as promised."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qmotto
from qmotto import decode
from tests.models import helpers
from tests.sampling import toy_models

MODEL = toy_models.PrefixTableModel(vocab=3, length=4, seed=0)


def _batched(**kwargs):
  kwargs = dict(num_groups=2, num_samples=4, length=4, sampling="lattice") | kwargs
  return decode.sample_sequences_batched(jax.random.key(0), MODEL.logits_fn, **kwargs)


@pytest.mark.parametrize("scalar", [int, np.int64, np.int32, jnp.int32], ids=lambda f: f.__name__)
def test_numbers_of_any_kind_give_the_same_samples(scalar):
  expected = _batched()
  got = _batched(num_groups=scalar(2), num_samples=scalar(4), length=scalar(4), pad_id=scalar(0))
  np.testing.assert_array_equal(got, expected)


def test_sample_sequences_accepts_numpy_num_samples():
  # Was refused ("num_samples must be an int") while length=np.int64 passed.
  def logits_fn(tokens, t):
    return jnp.zeros(tokens.shape[:-1] + (3,))

  got = qmotto.sample_sequences(jax.random.key(0), logits_fn, num_samples=np.int64(8), length=np.int64(2))
  np.testing.assert_array_equal(
      got, qmotto.sample_sequences(jax.random.key(0), logits_fn, num_samples=8, length=2)
  )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_samples="4"), "num_samples must be an int >= 1, got the string"),
        (dict(length="4"), "length must be an int >= 1, got the string"),
        (dict(num_groups="2"), "num_groups must be an int >= 1, got the string"),
        (dict(num_samples=4.0), "num_samples must be an int"),
        (dict(pad_id=-1), "pad_id must be an int >= 0"),
    ],
)
def test_strings_and_floats_for_counts_are_value_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    _batched(**kwargs)


@pytest.mark.parametrize(
    "group_ids, match",
    [
        (np.array([0.0, 1.5]), "group_ids must hold integers in \\[0, 2\\*\\*32\\), got dtype float64"),
        (np.array([True, False]), "group_ids must hold integers"),
        (np.array([0, 2**32], np.int64), "group_ids must hold integers in \\[0, 2\\*\\*32\\), got values"),
        (np.array([-1, 3]), "got values in \\[-1, 3\\]"),
        (np.arange(5), "group_ids must be int\\[2\\] \\(one id per group\\)"),
    ],
)
def test_group_ids_are_checked_in_sample_sequences_batched(group_ids, match):
  # Before: float ids were truncated and ids >= 2**32 wrapped onto id 0, so
  # two groups silently shared their randomness.
  with pytest.raises(ValueError, match=match):
    _batched(group_ids=group_ids)


def test_group_ids_are_checked_in_generate():
  model = helpers.random_model(3, max_seq_len=16)
  prompts, lengths = np.array([[1, 2], [3, 4]], np.int32), np.array([2, 2], np.int32)
  with pytest.raises(ValueError, match="group_ids must hold integers"):
    decode.generate(jax.random.key(0), model, prompts, lengths, num_samples=2, max_new_tokens=2,
                    group_ids=np.array([0.5, 1.0]))
  with pytest.raises(ValueError, match=r"group_ids must hold integers in \[0, 2\*\*32\), got values"):
    decode.generate(jax.random.key(0), model, prompts, lengths, num_samples=2, max_new_tokens=2,
                    group_ids=np.array([4, 2**32]))


def test_equal_group_ids_give_equal_groups():
  # How a caller pads a batch to one shape: repeat the last group.
  tokens = _batched(group_ids=np.array([5, 5]))
  np.testing.assert_array_equal(tokens[0], tokens[1])


def test_largest_group_id_is_accepted():
  top = _batched(group_ids=np.array([0, 2**32 - 1], np.uint64))
  np.testing.assert_array_equal(top[0], _batched(group_ids=np.array([0, 1]))[0])
  np.testing.assert_array_equal(top[1], _batched(group_ids=np.array([2**32 - 1, 1]))[0])


def test_traced_group_ids_must_be_integers():
  @jax.jit
  def run(ids):
    return decode.sample_sequences_batched(jax.random.key(0), MODEL.logits_fn, num_groups=2, num_samples=4,
                                           length=4, group_ids=ids)

  with pytest.raises(ValueError, match="group_ids must hold integers"):
    run(jnp.array([0.0, 1.0]))
  np.testing.assert_array_equal(run(jnp.array([0, 1], jnp.int32)), _batched())
