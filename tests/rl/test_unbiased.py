"""GRPO's policy-gradient estimate from coupled groups, against the exact gradient of a toy policy.

The toy (`qmotto.rl.toy_policy.default_problem`): a tabular autoregressive
policy over V = 3 tokens for T = 2 steps (D = 3 + 9 = 12 logit parameters)
and a fixed reward table; grad J is exact by enumerating the 9 sequences.
Groups of G = 4 are drawn with qmotto's samplers (the code GRPO uses), and
the estimate of a group is (1/G) sum_i A_i grad log pi(y_i).

Threshold. For M independent groups (fixed keys), each component's mean
estimate is compared with its target in units of its standard error over
groups: z = (mean - target) / se. Under the null hypothesis (no bias) z is
approximately N(0, 1) (CLT: M = 2^14 i.i.d. groups, bounded summands). This
file makes N_TESTS = 12 components x (4 samplers + 2 i.i.d. checks) = 72
comparisons; a per-comparison two-sided level of 1e-6 / 72 gives
Z_MAX = 5.67, so a correct implementation fails with probability < 1e-6
(Bonferroni) for a random key; with these fixed keys a pass is deterministic.
The power check shows the same threshold rejects a real bias (the (G-1)/G
scale of the mean-centred estimate, a 25% bias at G = 4).

The bias of group baselines ("loo", "mean") under coupling is measured, not
asserted (it is not zero: see results/grpo/loo_bias.json, written by
`python -m qmotto.rl.toy_policy`); the test prints it.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.stats

from qmotto.rl import toy_policy

GROUP = 4
NUM_GROUPS = 1 << 14
SAMPLERS = ("iid", "lattice", "stratified", "sobol")
N_TESTS = 12 * (len(SAMPLERS) + 2)
Z_MAX = float(scipy.stats.norm.isf(1e-6 / N_TESTS / 2))  # 5.67
THETA, REWARD = toy_policy.default_problem()
EXACT = toy_policy.exact_gradient(THETA, REWARD)
LOGITS_FN = toy_policy.make_logits_fn(THETA)


@pytest.fixture(scope="module")
def samples():
  out = {}
  for i, name in enumerate(SAMPLERS):
    out[name] = toy_policy.draw_groups(
        jax.random.key(100 + i), THETA, sampler=name, group_size=GROUP, num_groups=NUM_GROUPS, logits_fn=LOGITS_FN)
  return out


def test_exact_gradient_matches_finite_differences():
  assert Z_MAX == pytest.approx(5.67, abs=0.01)
  flat = np.concatenate([np.asarray(THETA.first).ravel(), np.asarray(THETA.next).ravel()]).astype(np.float64)

  def j(x):
    first, nxt = x[:3], x[3:].reshape(THETA.next.shape)
    return float(toy_policy.expected_reward(toy_policy.TabularPolicy(first.astype(np.float32), nxt.astype(np.float32)),
                                            REWARD))

  h = 1e-2
  numeric = [(j(flat + h * e) - j(flat - h * e)) / (2 * h) for e in np.eye(flat.size)]
  np.testing.assert_allclose(EXACT, numeric, atol=2e-4)
  assert np.linalg.norm(EXACT) > 0.05 and EXACT.size == 12


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_fixed_baseline_is_unbiased_under_coupling(samples, sampler):
  est = toy_policy.group_estimates(samples[sampler], THETA, REWARD, advantage="fixed", baseline=0.5)
  check = toy_policy.check_estimates(est, EXACT)
  print(f"{sampler}: fixed baseline, max |z| = {check.max_abs_z:.2f}")
  assert check.max_abs_z < Z_MAX, (sampler, check.z)


def test_iid_group_baselines_and_power(samples):
  loo = toy_policy.group_estimates(samples["iid"], THETA, REWARD, advantage="loo")
  assert toy_policy.check_estimates(loo, EXACT).max_abs_z < Z_MAX  # i.i.d.: LOO is unbiased.
  mean = toy_policy.group_estimates(samples["iid"], THETA, REWARD, advantage="mean")
  # i.i.d.: the mean-centred estimate has expectation (G - 1)/G grad J ...
  assert toy_policy.check_estimates(mean, EXACT * (GROUP - 1) / GROUP).max_abs_z < Z_MAX
  # ... and the test sees that 25% scale bias (power).
  assert toy_policy.check_estimates(mean, EXACT).max_abs_z > 2 * Z_MAX


def test_group_baseline_bias_under_coupling_is_measured(samples):
  for sampler in SAMPLERS[1:]:
    for kind in ("loo", "mean"):
      est = toy_policy.group_estimates(samples[sampler], THETA, REWARD, advantage=kind)
      check = toy_policy.check_estimates(est, EXACT)
      scale = float(check.mean @ EXACT / (EXACT @ EXACT))
      rel = np.linalg.norm(check.bias) / np.linalg.norm(EXACT)
      print(f"{sampler} {kind}: |bias|/|grad J| = {rel:.3f}, scale {scale:.3f}, max |z| {check.max_abs_z:.1f}")
      assert np.all(np.isfinite(check.mean)) and 0 < scale < 2  # biased, but still an ascent direction.
