"""Exactness: every slot of every sampler's group is an exact draw from the model.

Each test compares, for one slot i of the group, the sequences that slot
produced over many independently randomized groups with the model's exact
sequence distribution (chi-square). Groups are independent, so slot i's
sequences are i.i.d. draws under exactness.

Thresholds: each test computes one p-value per slot, uniform on (0, 1) when
the sampler is exact (keys are fixed, so a pass is deterministic; the
threshold bounds the chance that a correct implementation would have failed
for a random key). With at most ~720 p-values across this file, a per-p-value
threshold of 1e-9 keeps the family-wise false-failure probability below
7.2e-7 < 1e-6 (Bonferroni). The power checks at the end show that the same
tests do reject realistic defects.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import qmotto
from qmotto.sampling import inverse_cdf

from . import reference
from . import toy_models

P_MIN = 1e-9
SAMPLERS = sorted(qmotto.SAMPLERS)
GROUP = 8


def chi_square_pvalue(observed_counts: np.ndarray, probs: np.ndarray) -> float:
  """Chi-square goodness of fit; cells expecting < 5 are pooled into one."""
  n = observed_counts.sum()
  expected = probs * n
  small = expected < 5
  obs = np.concatenate([observed_counts[~small], [observed_counts[small].sum()]])
  exp = np.concatenate([expected[~small], [expected[small].sum()]])
  keep = exp > 0
  obs, exp = obs[keep], exp[keep]
  exp = exp * obs.sum() / exp.sum()
  return float(scipy.stats.chisquare(obs, exp).pvalue)


def sequence_counts(tokens: np.ndarray, vocab: int) -> np.ndarray:
  """tokens int[G, L] -> counts over the vocab**L sequences (first token lowest)."""
  ids = (tokens * vocab ** np.arange(tokens.shape[-1])).sum(-1)
  return np.bincount(ids, minlength=vocab ** tokens.shape[-1])


def sample_groups(logits_fn, sampler, num_groups, length, seed, **transform):
  out = qmotto.sample_sequences_batched(
      jax.random.key(seed),
      logits_fn,
      num_groups=num_groups,
      num_samples=GROUP,
      length=length,
      sampling=qmotto.SamplingOptions.create(sampler, **transform),
  )
  return np.asarray(out)  # [G, N, L]


MODEL = toy_models.PrefixTableModel(vocab=3, length=4, seed=1)
TRANSFORMS = {
    "plain": dict(),
    "temperature": dict(temperature=0.6),
    "top_k": dict(top_k=2),
    "top_p": dict(top_p=0.8),
}


def _exact_probs(**transform):
  probs = MODEL.sequence_probs(**transform)
  ids = [sum(tok * 3**t for t, tok in enumerate(seq)) for seq in probs]
  out = np.zeros(3**4)
  out[ids] = list(probs.values())
  return out


EXACT = {name: _exact_probs(**t) for name, t in TRANSFORMS.items()}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_slot_has_the_exact_sequence_distribution(sampler, transform):
  tokens = sample_groups(MODEL.logits_fn, sampler, 3000, 4, seed=17, **TRANSFORMS[transform])
  for slot in range(GROUP):
    p = chi_square_pvalue(sequence_counts(tokens[:, slot], 3), EXACT[transform])
    assert p > P_MIN, (sampler, transform, slot, p)


DYADIC = np.log(np.array([0.5, 0.25, 0.125, 0.125], np.float32))
LONG = 1024


def dyadic_logits_fn(tokens, t):
  return jnp.broadcast_to(jnp.asarray(DYADIC), tokens.shape[:-1] + (4,))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_exact_over_1000_steps_with_dyadic_probabilities(sampler):
  # A naive carried float32 code loses one bit per 1/2-probability token and
  # collapses to token 0 within ~24 steps. Here every position must keep the
  # exact distribution, and positions must stay independent.
  tokens = sample_groups(dyadic_logits_fn, sampler, 1000, LONG, seed=23)  # [G, N, L]
  probs = np.exp(DYADIC.astype(np.float64))
  for slot in range(GROUP):
    late = tokens[:, slot, 24:].reshape(-1)  # 1000 groups x 1000 positions.
    p = chi_square_pvalue(np.bincount(late, minlength=4), probs)
    assert p > P_MIN, (sampler, slot, "marginal", p)
    last_pair = tokens[:, slot, -2] * 4 + tokens[:, slot, -1]
    p = chi_square_pvalue(np.bincount(last_pair, minlength=16), np.outer(probs, probs).reshape(-1))
    assert p > P_MIN, (sampler, slot, "last pair", p)
    # The very last position on its own, across groups.
    p = chi_square_pvalue(np.bincount(tokens[:, slot, -1], minlength=4), probs)
    assert p > P_MIN, (sampler, slot, "last position", p)


MARKOV = np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32) * 1.5


@pytest.mark.parametrize("sampler", ["lattice", "stratified", "antithetic", "sobol", "sobol_code", "iid"])
def test_exact_over_1000_steps_markov_chain(sampler):
  logits_fn = toy_models.stationary_markov(MARKOV)
  tokens = sample_groups(logits_fn, sampler, 1000, 1000, seed=29)
  trans = np.exp(MARKOV.astype(np.float64))
  trans /= trans.sum(-1, keepdims=True)
  dist = trans[3]  # x_0.
  for _ in range(998 - 0):
    dist = dist @ trans[:3]
  joint = (dist[:, None] * trans[:3]).reshape(-1)  # (x_998, x_999).
  for slot in range(GROUP):
    pair = tokens[:, slot, 998] * 3 + tokens[:, slot, 999]
    p = chi_square_pvalue(np.bincount(pair, minlength=9), joint)
    assert p > P_MIN, (sampler, slot, p)


# --- The tests above have power: they reject realistic defects. -------------


def naive_code_sampling(num_groups, length, seed):
  """Code mode WITHOUT the shared rotation: the pitfall the rotation fixes."""
  codes = qmotto.qmc.lattice(jax.random.key(seed), num_groups * GROUP, 1)[:, 0]
  weights = jnp.broadcast_to(jnp.exp(jnp.asarray(DYADIC)), (codes.shape[0], 4))
  step = jax.jit(lambda c: inverse_cdf.invert_cdf(weights, c))
  out = []
  for _ in range(length):
    tokens, codes = step(codes)
    out.append(np.asarray(tokens))
  return np.stack(out, -1)  # [G*N, L]


def test_power_naive_code_collapses_and_is_rejected():
  tokens = naive_code_sampling(1000, 64, seed=3)
  assert (tokens[:, 40:] == 0).all()  # collapsed to the first bin.
  probs = np.exp(DYADIC.astype(np.float64))
  p = chi_square_pvalue(np.bincount(tokens[:1000, -1], minlength=4), probs)
  assert p < P_MIN


def test_power_wrong_temperature_is_rejected():
  # A 20% temperature error (0.72 instead of 0.6) is caught by one slot.
  tokens = sample_groups(MODEL.logits_fn, "lattice", 3000, 4, seed=17, temperature=0.72)
  p = chi_square_pvalue(sequence_counts(tokens[:, 0], 3), EXACT["temperature"])
  assert p < P_MIN


def test_power_or_combined_shift_is_rejected():
  # A digital shift made as the OR of two random words (bits are 1 with
  # probability 3/4): the marginal of a 1-step uniform model is visibly off.
  keys = jax.random.split(jax.random.key(0), 2)
  shift = jax.random.bits(keys[0], (4000,), jnp.uint32) | jax.random.bits(keys[1], (4000,), jnp.uint32)
  u = qmotto.qmc.words_to_unit_float(shift)
  tokens, _ = inverse_cdf.invert_cdf(jnp.ones((4000, 4)), u)
  p = chi_square_pvalue(np.bincount(np.asarray(tokens), minlength=4), np.full(4, 0.25))
  assert p < P_MIN
