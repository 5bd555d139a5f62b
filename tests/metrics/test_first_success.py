"""Sampling until verified (qmotto.metrics.first_success): exact on small inputs, unbiased by simulation.

Toy model. A problem is a partition of [0, 1) into intervals ("types"), each
with a probability (its length), whether its answer is correct, whether it
has an answer at all, and a generated length. A slot holds a uniform u and
the type whose interval holds u; the verifier accepts a correct slot always
and an answered wrong one when an independent uniform V < q. Groups of N
slots are drawn as
  iid:        u_i independent;
  extensible: u_i = (phi_2(i) + D) mod 1, phi_2 the van der Corput radical
              inverse, one D ~ U[0, 1) per group (the 1-D lattice in
              radical-inverse order: its first 2**j slots are a shifted
              2**j-point lattice, and slot i does not depend on N).
The truths are exact and computed here from the definitions, independently
of the estimators. With P(no accept in the first j) written h(j), samples =
b sum_{r<m} 1{no accept in the first r b}, solved = sum_i 1{slot i correct,
no accept before i}, tokens = sum_j L_j 1{no accept in the first
floor(j / b) b}:
  iid:        h(j) = (1 - alpha)^j, alpha = P(accept); E[solved] =
              p sum_{i<N} h(i); E[tokens] = E[L] E[samples] (slot j is
              independent of the slots before it);
  extensible: given D the types are fixed and h(j | D) = 1{no correct slot
              among the first j} (1 - q)^(answered slots among them), so the
              three expectations are sums over slots; they are piecewise
              constant in D, with breaks where some slot crosses a type edge,
              and integrated exactly over those pieces.

Thresholds. Each compared estimate is a mean of M independent per-problem
values with the truth as expectation, each in [0, c] with c = N (samples),
1 (solved) or N * max L (tokens): i.i.d., M replications of a toy problem,
each pooling R n samples (an unbiased estimator of each); coupled, the mean
over M independent groups of one realization. Hoeffding gives
P(|mean - truth| >= c t) <= 2 exp(-2 M t^2). With t = hoeffding_t(M, DELTA),
DELTA = 1e-9 per compared value and fewer than 100 compared values here, a
correct implementation fails with probability < 1e-7 (the seeds are fixed,
so the outcome is deterministic). Every difference this file asserts is
larger than 3 c t.
"""

import itertools
import math

import numpy as np
import pytest

from qmotto import metrics
from qmotto.sampling import SAMPLERS
from qmotto.sampling import get_sampler as S

DELTA = 1e-9
M = 100_000  # replications (i.i.d.) or groups (coupled) per toy
N = 8  # budget
B = 2  # round size

# Types along [0, 1): (probability, correct, answered, length). The correct
# type is short, wrong answers are long, one type has no answer.
TOYS = {
    "rare": [(0.08, True, True, 3), (0.52, False, True, 9), (0.25, False, True, 6), (0.15, False, False, 12)],
    "half": [(0.25, False, True, 4), (0.30, True, True, 2), (0.45, False, True, 7)],
    "none": [(0.6, False, True, 5), (0.4, False, False, 8)],  # never solved: E[samples] = N unless q > 0.
}
CASES = [(toy, q) for toy in TOYS for q in (0.0, 0.2)]


def hoeffding_t(num, delta=DELTA):
  """t with 2 exp(-2 num t^2) = delta."""
  return math.sqrt(math.log(2.0 / delta) / (2.0 * num))


T = hoeffding_t(M)  # about 0.0103


def _table(toy):
  prob, correct, answered, length = (np.array(x) for x in zip(*TOYS[toy]))
  return np.concatenate([[0.0], np.cumsum(prob)]), correct, answered, length


def _types(toy, u):
  edges, *_ = _table(toy)
  return np.clip(np.searchsorted(edges, u, side="right") - 1, 0, len(TOYS[toy]) - 1)


def _van_der_corput(n):
  out = np.zeros(n)
  for i in range(n):
    bits, x, scale = i, 0.0, 0.5
    while bits:
      x += scale * (bits & 1)
      bits, scale = bits >> 1, scale / 2
    out[i] = x
  return out


def _draw(toy, kind, q, num, size, rng):
  """(accepted, correct, lengths) of `num` groups of `size` slots, each [num, size]."""
  if kind == "iid":
    u = rng.random((num, size))
  else:
    u = (_van_der_corput(size)[None, :] + rng.random((num, 1))) % 1.0
  _, correct, answered, length = _table(toy)
  types = _types(toy, u)
  right = correct[types]
  accepted = right | (answered[types] & (rng.random((num, size)) < q))
  return accepted, right, length[types]


def _iid_truth(toy, q):
  _, correct, answered, length = _table(toy)
  prob = np.diff(_table(toy)[0])
  p = prob[correct].sum()
  alpha = p + q * prob[~correct & answered].sum()
  none = (1.0 - alpha) ** np.arange(N + 1)
  samples = B * none[0:N:B].sum()
  return samples, p * none[:N].sum(), (prob * length).sum() * samples


def _given_types(types, toy, q):
  """(samples, solved, tokens) in expectation over the verifier, given each slot's type (slot order)."""
  _, correct, answered, length = _table(toy)
  right, wrong_answered = correct[types], answered[types] & ~correct[types]
  # h[j]: P(no accept among the first j slots).
  h = np.concatenate([[1.0], np.cumprod(np.where(right, 0.0, np.where(wrong_answered, 1.0 - q, 1.0)))])
  samples = B * h[0:N:B].sum()
  solved = (right * h[:N]).sum()
  tokens = (length[types] * h[(np.arange(N) // B) * B]).sum()
  return np.array([samples, solved, tokens])


def _extensible_truth(toy, q):
  edges, *_ = _table(toy)
  phi = _van_der_corput(N)
  cuts = np.unique(np.concatenate([[0.0, 1.0], ((edges[None, :] - phi[:, None]) % 1.0).ravel()]))
  total = np.zeros(3)
  for lo, hi in zip(cuts[:-1], cuts[1:]):
    if hi > lo:
      total += (hi - lo) * _given_types(_types(toy, (phi + (lo + hi) / 2) % 1.0), toy, q)
  return total


def _scales(toy):
  return np.array([N, 1.0, N * max(t[3] for t in TOYS[toy])])


# --- exact on small inputs ---------------------------------------------------------


def _ordered_mean(accepted, correct, lengths, budget, round_size):
  """The mean of first_success_in_order over every ordered choice of `budget` distinct samples."""
  total, count = np.zeros(3), 0
  for order in itertools.permutations(range(len(accepted)), budget):
    order = list(order)
    one = metrics.first_success_in_order(accepted[order], correct[order], round_size=round_size,
                                         lengths=lengths[order])
    total += [one.samples, one.solved, one.tokens]
    count += 1
  return total / count


@pytest.mark.parametrize("seed", range(6))
def test_iid_estimator_is_the_mean_over_all_orderings(seed):
  rng = np.random.default_rng(seed)
  for n, budget, round_size in [(5, 4, 2), (6, 6, 3), (6, 3, 1), (4, 2, 2), (7, 4, 4), (1, 1, 1)]:
    accepted = rng.random(n) < rng.choice([0.0, 0.3, 0.7, 1.0])
    correct = rng.random(n) < 0.5
    lengths = rng.integers(0, 20, n)
    got = metrics.iid_first_success(accepted[None], correct[None], budget=budget, round_size=round_size,
                                    lengths=lengths[None])
    want = _ordered_mean(accepted, correct, lengths, budget, round_size)
    np.testing.assert_allclose([got.samples[0], got.solved[0], got.tokens[0]], want, rtol=1e-12, atol=1e-12)


def test_pooled_groups_and_a_flat_pool_agree():
  rng = np.random.default_rng(7)
  accepted, correct = rng.random((5, 3, 4)) < 0.3, rng.random((5, 3, 4)) < 0.5
  lengths = rng.integers(1, 9, (5, 3, 4))
  pooled = metrics.first_success(accepted, correct, sampler=S("iid"), round_size=2, lengths=lengths)
  flat = metrics.iid_first_success(accepted.reshape(5, 12), correct.reshape(5, 12), budget=4, round_size=2,
                                   lengths=lengths.reshape(5, 12))
  for a, b in zip(pooled, flat):
    np.testing.assert_array_equal(a, b)
  wider = metrics.first_success(accepted, correct, sampler="independent", round_size=2, budget=8, lengths=lengths)
  assert np.all(wider.samples >= pooled.samples) and np.all(wider.solved >= pooled.solved - 1e-12)


def test_one_realization_in_slot_order():
  accepted = np.array([[0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0]], bool)
  correct = np.array([[0, 0, 0, 0, 1, 1], [1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]], bool)
  lengths = np.array([[1, 2, 3, 4, 5, 6]] * 4)
  got = metrics.first_success_in_order(accepted, correct, round_size=2, lengths=lengths)
  # Row 0: slot 3 accepted (wrong) in round 2; slot 4 is right but comes later. Row 1: nothing
  # accepted, the whole budget drawn. Row 2: accepted and right at once. Row 3: slot 2, round 2.
  np.testing.assert_array_equal(got.samples, [4, 6, 2, 4])
  np.testing.assert_array_equal(got.solved, [0, 0, 1, 1])
  np.testing.assert_array_equal(got.tokens, [10, 21, 3, 10])
  assert metrics.first_success_in_order(accepted, correct, round_size=3).tokens is None
  one_round = metrics.first_success_in_order(accepted, correct, round_size=6, lengths=lengths)
  np.testing.assert_array_equal(one_round.samples, [6, 6, 6, 6])
  np.testing.assert_array_equal(one_round.solved, [0, 0, 1, 1])


def test_coupled_estimate_is_the_mean_over_groups_of_the_first_slots():
  rng = np.random.default_rng(3)
  accepted, correct = rng.random((4, 5, 16)) < 0.2, rng.random((4, 5, 16)) < 0.5
  lengths = rng.integers(1, 9, (4, 5, 16))
  got = metrics.first_success(accepted, correct, sampler=S("sobol_code"), round_size=4, budget=8, lengths=lengths)
  one = metrics.first_success_in_order(accepted[..., :8], correct[..., :8], round_size=4, lengths=lengths[..., :8])
  for a, b in zip(got, one):
    np.testing.assert_allclose(a, b.mean(axis=1))


# --- unbiased, by simulation ---------------------------------------------------------


@pytest.mark.parametrize("toy, q", CASES)
def test_iid_estimator_is_unbiased(toy, q):
  rng = np.random.default_rng([CASES.index((toy, q)), 0])
  accepted, correct, lengths = _draw(toy, "iid", q, M, 2 * N, rng)
  shape = (M, 2, N)  # two i.i.d. groups of N per problem, pooled.
  got = metrics.first_success(accepted.reshape(shape), correct.reshape(shape), sampler=S("iid"), round_size=B,
                              lengths=lengths.reshape(shape))
  means = np.array([got.samples.mean(), got.solved.mean(), got.tokens.mean()])
  np.testing.assert_array_less(np.abs(means - _iid_truth(toy, q)), _scales(toy) * T)


@pytest.mark.parametrize("toy, q", CASES)
def test_extensible_estimator_is_unbiased(toy, q):
  rng = np.random.default_rng([CASES.index((toy, q)), 1])
  accepted, correct, lengths = _draw(toy, "extensible", q, M, N, rng)
  got = metrics.first_success(accepted[:, None], correct[:, None], sampler="dyadic", round_size=B,
                              lengths=lengths[:, None])
  means = np.array([got.samples.mean(), got.solved.mean(), got.tokens.mean()])
  np.testing.assert_array_less(np.abs(means - _extensible_truth(toy, q)), _scales(toy) * T)


def test_coupling_changes_the_truth_and_the_iid_formula_would_be_biased():
  # On "half" (p = 0.3, its correct interval spans more than 1/4) with q = 0, a coupled
  # group always holds a correct slot among its first 4 (an arc longer than 1/4 holds one of
  # 4 evenly spaced points), so it never draws more than 4; i.i.d. often does.
  coupled, iid = _extensible_truth("half", 0.0), np.array(_iid_truth("half", 0.0))
  assert coupled[1] == pytest.approx(1.0) and iid[1] < 1.0 - 3 * T
  assert coupled[0] < iid[0] - 3 * N * T
  # Read as i.i.d. (pooled over orderings), the coupled groups estimate the i.i.d. value
  # instead: the estimator must follow the sampler.
  rng = np.random.default_rng(11)
  accepted, correct, _ = _draw("half", "extensible", 0.0, M, N, rng)
  wrong = metrics.first_success(accepted[:, None], correct[:, None], sampler="independent", round_size=B)
  assert wrong.samples.mean() > coupled[0] + 3 * N * T


# --- extensibility and errors ----------------------------------------------------------------


def test_which_samplers_are_extensible():
  assert all(metrics.is_extensible(S(name)) for name in ("iid", "sobol", "sobol_code"))
  assert not metrics.is_extensible(S("lattice")) and not metrics.is_extensible(S("stratified"))
  assert metrics.is_extensible("dyadic") and metrics.is_extensible("independent")
  assert not metrics.is_extensible("strided") and not metrics.is_extensible("whole")
  if "lattice_extensible" in SAMPLERS:
    assert metrics.is_extensible(S("lattice_extensible"))


@pytest.mark.parametrize("name", ["lattice", "stratified"])
def test_samplers_that_are_not_extensible_raise(name):
  flags = np.zeros((2, 1, 8), bool)
  with pytest.raises(ValueError, match=f"first_success: sampler '{name}' is not extensible.*lattice_extensible"):
    metrics.first_success(flags, flags, sampler=S(name), round_size=2)
  with pytest.raises(ValueError, match="group structure 'strided' is not extensible"):
    metrics.first_success(flags, flags, sampler="strided", round_size=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(round_size=3), "budget=8 is not a multiple of round_size=3"),
        (dict(round_size=16), "round_size=16 is larger than the budget budget=8"),
        (dict(round_size=2, budget=16), "budget=16 exceeds the group size"),
        (dict(round_size=0), "round_size must be an int >= 1"),
        (dict(round_size=2, lengths=np.zeros((2, 1, 4), int)), "lengths must have the shape"),
        (dict(round_size=2, lengths=-np.ones((2, 1, 8), int)), "lengths must be >= 0"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
  flags = np.zeros((2, 1, 8), bool)
  with pytest.raises(ValueError, match=match):
    metrics.first_success(flags, flags, sampler=S("sobol"), **kwargs)


def test_bad_flags_raise():
  with pytest.raises(ValueError, match="accepted must be a bool array"):
    metrics.first_success(np.full((1, 1, 4), 0.5), np.zeros((1, 1, 4), bool), sampler="dyadic", round_size=2)
  with pytest.raises(ValueError, match=r"accepted \(1, 1, 4\) and correct \(1, 1, 2\)"):
    metrics.first_success(np.zeros((1, 1, 4), bool), np.zeros((1, 1, 2), bool), sampler="dyadic", round_size=2)
  with pytest.raises(ValueError, match="budget=24 exceeds the R \\* n = 2 \\* 8 pooled"):
    metrics.first_success(np.zeros((1, 2, 8), bool), np.zeros((1, 2, 8), bool), sampler="independent",
                          round_size=4, budget=24)
  with pytest.raises(ValueError, match="group size accepted.shape\\[2\\]=6 is not a group size"):
    metrics.first_success(np.zeros((1, 1, 6), bool), np.zeros((1, 1, 6), bool), sampler=S("sobol"), round_size=2)


# --- the verifier ------------------------------------------------------------------------


def test_verifier_accepts_correct_samples_and_wrong_ones_at_rate_q():
  rng = np.random.default_rng(5)
  correct = rng.random((400, 2, 64)) < 0.3  # 51,200 samples, about 35,800 wrong.
  answered = correct | (rng.random(correct.shape) < 0.9)
  indices = rng.permutation(10_000)[:400]
  previous = None
  for q in (0.0, 0.05, 0.2, 1.0):
    accepted = metrics.imperfect_verifier(correct, false_positive_rate=q, seed=3, problem_indices=indices,
                                          answered=answered)
    assert accepted.shape == correct.shape and accepted[correct].all()
    assert not accepted[~answered].any()  # no answer, nothing to accept.
    wrong = ~correct & answered
    # Hoeffding over the wrong answered samples, as independent uniforms.
    assert abs(accepted[wrong].mean() - q) < hoeffding_t(int(wrong.sum()))
    if previous is not None:
      assert np.all(accepted >= previous)  # one uniform per slot: a larger q accepts a superset.
    previous = accepted
  again = metrics.imperfect_verifier(correct, false_positive_rate=0.2, seed=3, problem_indices=indices)
  np.testing.assert_array_equal(
      again, metrics.imperfect_verifier(correct, false_positive_rate=0.2, seed=3, problem_indices=indices))
  # Keyed by the problem's index and the slot, not by the row: reordering the problems reorders the decisions.
  order = rng.permutation(400)
  np.testing.assert_array_equal(
      metrics.imperfect_verifier(correct[order], false_positive_rate=0.2, seed=3, problem_indices=indices[order]),
      again[order])
  other = metrics.imperfect_verifier(correct, false_positive_rate=0.2, seed=4, problem_indices=indices)
  assert np.mean(other != again) > 0.1
  with pytest.raises(ValueError, match="false_positive_rate must hold probabilities"):
    metrics.imperfect_verifier(correct, false_positive_rate=1.5, seed=0)
  with pytest.raises(ValueError, match="problem_indices must be int\\[400\\]"):
    metrics.imperfect_verifier(correct, false_positive_rate=0.1, seed=0, problem_indices=indices[:3])


# --- samples saved ------------------------------------------------------------------------


def test_cost_saved_with_bootstrap_interval():
  rng = np.random.default_rng(2)
  iid = rng.uniform(1.0, 8.0, 300)
  coupled = 0.7 * iid + rng.normal(0.0, 0.1, 300).clip(-0.5, 0.5)
  saved = metrics.bootstrap_cost_saved(coupled, iid, seed=0, num_resamples=500)
  assert saved.estimate == pytest.approx(1.0 - coupled.mean() / iid.mean())
  assert saved.low < saved.estimate < saved.high and 0.25 < saved.low and saved.high < 0.35
  same = metrics.bootstrap_cost_saved(iid, iid, seed=0, num_resamples=100)
  assert same == (0.0, 0.0, 0.0)
  assert all(np.isnan(x) for x in metrics.bootstrap_cost_saved(iid, np.zeros(300), seed=0, num_resamples=10))
  with pytest.raises(ValueError, match="must both be float\\[P\\]"):
    metrics.bootstrap_cost_saved(iid[:10], iid, seed=0)
  with pytest.raises(ValueError, match="must be >= 0"):
    metrics.bootstrap_cost_saved(-iid, iid, seed=0)
