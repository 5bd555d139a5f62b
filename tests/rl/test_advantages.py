"""Group advantages: values, the leave-one-out identity, zero-variance groups, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from qmotto.rl import advantages as adv

REWARDS = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.2, 0.4, 0.6, 0.8]], np.float32)


def test_mean_and_std_normalised():
  mean = REWARDS.mean(1, keepdims=True)
  np.testing.assert_allclose(adv.advantages(REWARDS, "mean"), REWARDS - mean, atol=1e-7)
  std = REWARDS.std(1, keepdims=True)
  np.testing.assert_allclose(adv.advantages(REWARDS, "mean_std", eps=1e-6), (REWARDS - mean) / (std + 1e-6), atol=1e-6)
  assert np.all(np.asarray(adv.advantages(REWARDS, "mean_std"))[1] == 0)  # a zero-variance group: no signal.


def test_leave_one_out_matches_the_explicit_loop():
  out = np.asarray(adv.advantages(REWARDS, "loo"))
  p, g = REWARDS.shape
  for row in range(p):
    for i in range(g):
      others = np.delete(REWARDS[row], i)
      assert out[row, i] == pytest.approx(REWARDS[row, i] - others.mean(), abs=1e-6)


def test_fixed_baseline_scalar_and_per_prompt():
  np.testing.assert_allclose(adv.advantages(REWARDS, "fixed", baseline=0.5), REWARDS - 0.5)
  per_prompt = np.array([0.0, 1.0, 0.5], np.float32)
  np.testing.assert_allclose(adv.advantages(REWARDS, "fixed", baseline=per_prompt), REWARDS - per_prompt[:, None])
  # A fixed baseline also serves groups of one sample.
  np.testing.assert_allclose(adv.advantages(REWARDS[:, :1], "fixed", baseline=0.0), REWARDS[:, :1])


def test_zero_variance_fraction():
  assert float(adv.zero_variance_fraction(REWARDS)) == pytest.approx(1 / 3)
  assert float(adv.zero_variance_fraction(np.ones((2, 3)))) == 1.0


@pytest.mark.parametrize(
    "rewards, kwargs, match",
    [
        (REWARDS, dict(kind="median"), "advantage must be one of"),
        (REWARDS[:, :1], dict(kind="mean"), "group_size must be an int >= 2"),
        (REWARDS[:, :1], dict(kind="loo"), "group_size must be an int >= 2"),
        (REWARDS, dict(kind="fixed"), "baseline is required"),
        (REWARDS, dict(kind="mean", baseline=0.5), "not allowed for 'mean'"),
        (REWARDS[0], dict(kind="mean"), r"rewards must be float\[P, G\]"),
    ],
)
def test_bad_input(rewards, kwargs, match):
  with pytest.raises(ValueError, match=match):
    adv.advantages(rewards, **kwargs)


def test_batch_std_scaling_on_a_fixed_batch():
  rewards = np.array([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])  # group means 0.5 and 1.
  # All 8 rewards: mean 0.75, std sqrt(0.75 * 0.25) = 0.4330.
  want = np.array([[0.5, -0.5, -0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]) / (np.sqrt(0.1875) + 1e-6)
  np.testing.assert_allclose(adv.advantages(rewards, "mean_batch_std", eps=1e-6), want, rtol=1e-6)
