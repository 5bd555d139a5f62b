"""Coverage: coupled groups find a rare answer far more often than i.i.d. ones.

A problem whose answer has probability p is solved by a group of k samples
with probability pass@k. No marginal-preserving sampler beats the union bound
min(1, k p); i.i.d. sampling gets 1 - (1 - p)**k. A lattice group attains the
bound wherever the answer's bin lies.

Thresholds: each estimate averages 4000 independent groups, so its standard
error is at most sqrt(q (1 - q) / 4000) for the true rate q. We allow 5.5
standard errors (two-sided normal tail 3.8e-8); with fewer than 25 such
comparisons in this file the chance that a correct implementation fails any
is below 1e-6.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qmotto

K = 8
GROUPS = 4000
Z = 5.5


def one_step_logits_fn(probs):
  logits = jnp.log(jnp.asarray(probs, jnp.float32))
  return lambda tokens, t: jnp.broadcast_to(logits, tokens.shape[:-1] + (len(probs),))


def pass_rate(logits_fn, sampler, length, answer, seed=0):
  tokens = np.asarray(
      qmotto.sample_sequences_batched(
          jax.random.key(seed), logits_fn, num_groups=GROUPS, num_samples=K, length=length,
          sampling=sampler,
      )
  )  # [G, K, L]
  solved = (tokens == np.asarray(answer)).all(-1).any(-1)
  return float(solved.mean())


def tolerance(q):
  return Z * np.sqrt(max(q * (1 - q), 1e-4) / GROUPS)


def stratified_exact(lower, p, k):
  """P(some stratified point hits [lower, lower + p)): strata independent."""
  miss = 1.0
  for j in range(k):
    overlap = max(0.0, min(lower + p, (j + 1) / k) - max(lower, j / k))
    miss *= 1 - k * overlap
  return 1 - miss


# (probabilities over 10 tokens, answer token): the answer (p = 0.1) first,
# inside one stratum of width 1/8, straddling two strata, and last.
CASES = {
    "first": ([0.1, 0.2, 0.1, 0.1, 0.05, 0.05, 0.1, 0.1, 0.1, 0.1], 0),
    "middle_one_stratum": ([0.25, 0.2, 0.05, 0.0, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05], 4),
    "straddling": ([0.13, 0.2, 0.0, 0.0, 0.1, 0.17, 0.1, 0.1, 0.1, 0.1], 4),
    "last": ([0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.1, 0.05, 0.1], 9),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_step_coverage(case):
  probs, answer = CASES[case]
  p = probs[answer]
  lower = float(np.sum(probs[:answer]))
  fn = one_step_logits_fn(probs)
  bound = min(1.0, K * p)
  iid_truth = 1 - (1 - p) ** K
  lattice = pass_rate(fn, "lattice", 1, [answer])
  iid = pass_rate(fn, "iid", 1, [answer])
  stratified = pass_rate(fn, "stratified", 1, [answer])
  sobol = pass_rate(fn, "sobol", 1, [answer])
  # The lattice reaches the union bound, i.i.d. its formula.
  assert abs(lattice - bound) < tolerance(bound), (lattice, bound)
  assert abs(iid - iid_truth) < tolerance(iid_truth), (iid, iid_truth)
  # Stratified: its exact value, between i.i.d. and the bound.
  truth = stratified_exact(lower, p, K)
  assert iid_truth < truth <= bound + 1e-12
  assert abs(stratified - truth) < tolerance(truth), (stratified, truth)
  # Sobol: a 1-D scrambled net, never worse than i.i.d., never above the bound.
  assert iid_truth - tolerance(iid_truth) < sobol < bound + tolerance(bound), sobol
  # "Far above": the lattice gain over i.i.d. is > 20 standard errors here.
  assert lattice - iid > 0.2


@pytest.mark.parametrize("first_token", [0, 2])
def test_two_step_answer_lattice_near_union_bound(first_token):
  # Answer (first_token, 1): p = 0.3 * 0.25 = 0.075, k p = 0.6. Code mode
  # stratifies recursively, so the lattice stays close to the bound; i.i.d.
  # gets 1 - 0.925**8 = 0.464.
  first = np.full(3, 0.35)
  first[first_token] = 0.3
  second = np.array([0.45, 0.25, 0.3])
  logits = jnp.log(jnp.asarray(np.stack([first, second]), jnp.float32))
  fn = lambda tokens, t: jnp.broadcast_to(logits[t], tokens.shape[:-1] + (3,))
  answer = [first_token, 1]
  bound = min(1.0, K * 0.075)
  iid_truth = 1 - (1 - 0.075) ** K
  lattice = pass_rate(fn, "lattice", 2, answer, seed=1)
  iid = pass_rate(fn, "iid", 2, answer, seed=1)
  stratified = pass_rate(fn, "stratified", 2, answer, seed=1)
  assert abs(iid - iid_truth) < tolerance(iid_truth)
  assert lattice < bound + tolerance(bound)  # no sampler beats the union bound.
  assert lattice > 0.95 * bound - tolerance(bound), (lattice, bound)
  # Lattice mean ~0.566 (se 0.008): 6 se above i.i.d. + 0.05.
  assert lattice > iid_truth + 0.05, (lattice, iid_truth)
  assert iid_truth - tolerance(iid_truth) < stratified < bound + tolerance(bound)


def test_distinct_answers_per_group():
  # Uniform over 16 tokens: a lattice group of 8 never repeats a token;
  # i.i.d. groups repeat often (expected distinct = 16 (1 - (15/16)**8) = 6.4).
  fn = one_step_logits_fn(np.full(16, 1 / 16))
  def distinct(sampler):
    tokens = np.asarray(
        qmotto.sample_sequences_batched(
            jax.random.key(2), fn, num_groups=500, num_samples=K, length=1, sampling=sampler
        )
    )[:, :, 0]
    return np.mean([len(set(row.tolist())) for row in tokens])
  assert distinct("lattice") == 8.0
  assert distinct("stratified") == 8.0
  assert abs(distinct("iid") - 16 * (1 - (15 / 16) ** 8)) < 0.25
