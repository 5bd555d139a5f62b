"""utils.numbers: Python, NumPy and JAX scalars accepted alike; the rest refused by name."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qmotto.utils import numbers


@pytest.mark.parametrize("value", [8, np.int64(8), np.uint8(8), jnp.int32(8), np.array(8)])
def test_check_int_accepts_every_kind_of_integer_scalar(value):
  result = numbers.check_int("num_samples", value, minimum=1)
  assert result == 8 and type(result) is int


@pytest.mark.parametrize(
    "value", ["8", b"8", None, True, np.bool_(True), 8.0, np.float32(8), 2 + 0j, [8], np.arange(2)]
)
def test_check_int_refuses_non_integers_with_a_value_error_naming_the_argument(value):
  with pytest.raises(ValueError, match="num_samples must be an int"):
    numbers.check_int("num_samples", value, minimum=1)


def test_check_int_range():
  assert numbers.check_int("n", 3, minimum=0, maximum=3) == 3
  with pytest.raises(ValueError, match=r"n must be an int in \[0, 3\], got 4"):
    numbers.check_int("n", 4, minimum=0, maximum=3)
  with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
    numbers.check_int("n", np.int64(0), minimum=1)


@pytest.mark.parametrize("value", [0.9, np.float32(0.9), jnp.float32(0.9), np.array(0.9), jnp.bfloat16(0.9)])
def test_check_float_accepts_every_kind_of_real_scalar(value):
  result = numbers.check_float("top_p", value, minimum=0.0, maximum=1.0)
  assert type(result) is float and abs(result - 0.9) < 4e-3


def test_check_float_accepts_integers_as_reals():
  assert numbers.check_float("temperature", 1, minimum=0.0, exclusive_minimum=True) == 1.0


@pytest.mark.parametrize("value", ["0.9", None, True, 1j, float("nan"), float("inf"), np.ones(2)])
def test_check_float_refuses_non_reals(value):
  with pytest.raises(ValueError, match="top_p must be a finite float"):
    numbers.check_float("top_p", value, minimum=0.0, maximum=1.0)


def test_check_float_exclusive_minimum():
  with pytest.raises(ValueError, match="temperature must be a finite float > 0.0, got 0.0"):
    numbers.check_float("temperature", 0.0, minimum=0.0, exclusive_minimum=True)


def test_traced_values_are_refused_as_settings():
  @jax.jit
  def f(x):
    return numbers.check_int("num_samples", x)

  with pytest.raises(ValueError, match="traced value"):
    f(jnp.int32(3))
