"""maj@k, weighted@k and bon@k estimators: exact on small inputs, unbiased by simulation, errors.

Toy model. A problem is a partition of [0, 1) into intervals ("types"),
each with an answer id (-1 = none), a score (also the weight of the
weighted vote) and a probability (its length); answer 0 is the correct one.
A slot of a group holds a uniform u and the type whose interval holds u.
Groups of n slots are drawn as
  iid:                   u_i independent;
  strided (lattice):     u_i = (i/n + D) mod 1, one D ~ U[0, 1) per group;
  whole (stratified):    u_i = (pi(i) + V_i)/n, pi a uniform permutation;
  paired (antithetic):   (u_{2j}, u_{2j+1}) = (w_j, 1 - w_j), w_j independent.
Every slot is an exact draw (u uniform). The truths are exact, computed here
from the definitions, independently of the estimators: each strategy's
success on a multiset of types (`_credit`, ties uniform among the tied
answers, or tied samples for best-of-n), averaged over
  iid, a group of m:     the multinomial count vectors of m draws;
  strided, m | n:        the shift D of a fresh m-point lattice, over which
                         the types of its points are piecewise constant;
  whole, m = n:          the n strata, one independent draw in each
                         (convolution of their type distributions);
  paired, even m:        m/2 independent antithetic pairs (convolution);
  any, m = 1:            one draw (the i.i.d. value at m = 1).

Thresholds. Each estimate compared below is a mean of independent values in
[0, 1] with the truth as their expectation:
  * coupled: the mean over R independent groups of the group's credit (or
    its mean over valid sub-groups);
  * iid: the problem axis holds M independent replications of a toy problem,
    each a pool of R n samples; given the k-subsets (fixed, or drawn once
    and shared by all problems), the per-problem estimates are independent,
    and each has the truth as its expectation since any fixed k-subset of
    i.i.d. samples is k i.i.d. samples. The mean over the M replications is
    compared.
Hoeffding's inequality gives P(|mean - truth| >= t) <= 2 exp(-2 num t^2).
With t = hoeffding_t(num, DELTA), DELTA = 1e-9 per compared value and fewer
than 1000 compared values in this file, a correct implementation fails with
probability < 1e-6 (the seeds are fixed, so the outcome is deterministic).
The negative control asserts a bias larger than 3 t.
"""

import collections
import itertools
import math

import numpy as np
import pytest

from qmotto import metrics
from qmotto.sampling import get_sampler as S

from .simulation import group_uniforms

DELTA = 1e-9
N = 8  # coupled group size
R = 20_000  # coupled groups per problem
M = 20_000  # i.i.d. replications (problems) per toy problem
STRATEGY_NAMES = ("majority", "weighted", "best_of_n")

# (probability, answer, score) per type, in order along [0, 1). Scores are
# dyadic, so sums of weights are exact and equal totals really tie.
TOYS = {
    # The correct answer leads, but best-of-n meets a tie between a right and a
    # wrong type at score 1, and a high-scored type without an answer.
    "mode_right": [(0.30, 0, 0.5), (0.25, 1, 1.0), (0.10, 0, 1.0), (0.20, 2, 0.25), (0.15, -1, 2.0)],
    # A wrong answer leads (maj@k falls with k), the right one has high scores.
    "mode_wrong": [(0.30, 0, 2.0), (0.40, 1, 0.5), (0.20, 2, 0.5), (0.10, -1, 4.0)],
}
TOY_NAMES = tuple(TOYS)


def hoeffding_t(num, delta=DELTA):
  """t with 2 exp(-2 num t^2) = delta."""
  return math.sqrt(math.log(2.0 / delta) / (2.0 * num))


# --- the strategies' success, from the definitions ---------------------------------


def _credit(strategy, samples):
  """Probability that the strategy's pick is right, ties broken uniformly.

  samples: (answer, correct, score) per sample. Votes tie among answers,
  best-of-n among samples; -1 never wins unless alone, and is never right.
  """
  answered = [s for s in samples if s[0] >= 0]
  if not answered:
    return 0.0
  if strategy == "best_of_n":
    best = max(s[2] for s in answered)
    tied = [s for s in answered if s[2] == best]
    return sum(s[1] for s in tied) / len(tied)
  totals = collections.defaultdict(float)
  right = {}
  for answer, correct, score in answered:
    totals[answer] += 1.0 if strategy == "majority" else score
    right[answer] = correct
  best = max(totals.values())
  top = [a for a, total in totals.items() if total == best]
  return sum(right[a] for a in top) / len(top)


def _type_samples(toy, counts):
  return [(answer, answer == 0, score) for (_, answer, score), c in zip(TOYS[toy], counts) for _ in range(c)]


def _count_vectors(total, parts):
  for cut in itertools.combinations(range(total + parts - 1), parts - 1):
    edges = (-1,) + cut + (total + parts - 1,)
    yield tuple(b - a - 1 for a, b in zip(edges, edges[1:]))


def _expectation(strategy, toy, distribution):
  """Mean credit over a {count vector: probability} distribution."""
  return sum(p * _credit(strategy, _type_samples(toy, c)) for c, p in distribution.items())


def _convolve(distributions):
  """The distribution of the summed count vectors of independent parts."""
  total = {None: 1.0}
  for part in distributions:
    out = collections.defaultdict(float)
    for c1, p1 in total.items():
      for c2, p2 in part.items():
        out[c2 if c1 is None else tuple(a + b for a, b in zip(c1, c2))] += p1 * p2
    total = out
  return total


def _edges(toy):
  return np.concatenate([[0.0], np.cumsum([t[0] for t in TOYS[toy]])])


def _type_of(toy, u):
  edges = _edges(toy)
  return np.clip(np.searchsorted(edges, u, side="right") - 1, 0, len(TOYS[toy]) - 1)


def _one_hot(toy, types):
  counts = [0] * len(TOYS[toy])
  for t in np.atleast_1d(types):
    counts[int(t)] += 1
  return tuple(counts)


def truth_iid(strategy, toy, m):
  probs = [t[0] for t in TOYS[toy]]
  distribution = {}
  for counts in _count_vectors(m, len(probs)):
    ways = math.factorial(m) / math.prod(math.factorial(c) for c in counts)
    distribution[counts] = ways * math.prod(p**c for p, c in zip(probs, counts))
  return _expectation(strategy, toy, distribution)


def truth_strided(strategy, toy, m):
  """A fresh m-point lattice {j/m + D}: the types are constant between the shifts D = edge mod 1/m."""
  breaks = np.unique(np.concatenate([[0.0, 1.0 / m], _edges(toy) % (1.0 / m)]))
  distribution = collections.defaultdict(float)
  for lo, hi in zip(breaks, breaks[1:]):
    points = (np.arange(m) / m + (lo + hi) / 2) % 1.0
    distribution[_one_hot(toy, _type_of(toy, points))] += (hi - lo) * m
  return _expectation(strategy, toy, distribution)


def _overlaps(toy, lo, hi):
  """Length of each type's interval inside [lo, hi)."""
  edges = _edges(toy)
  return np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)


def truth_whole(strategy, toy, n):
  """A stratified group of n: one draw in each stratum [j/n, (j+1)/n)."""
  parts = []
  for j in range(n):
    lengths = _overlaps(toy, j / n, (j + 1) / n) * n
    parts.append({_one_hot(toy, t): p for t, p in enumerate(lengths) if p > 0})
  return _expectation(strategy, toy, _convolve(parts))


def truth_paired(strategy, toy, m):
  """m/2 independent antithetic pairs (w, 1 - w)."""
  edges = _edges(toy)
  breaks = np.unique(np.concatenate([edges, 1.0 - edges]))
  pair = collections.defaultdict(float)
  for lo, hi in zip(breaks, breaks[1:]):
    w = (lo + hi) / 2
    pair[_one_hot(toy, _type_of(toy, np.array([w, 1.0 - w])))] += hi - lo
  return _expectation(strategy, toy, _convolve([pair] * (m // 2)))


def truth(kind, strategy, toy, m):
  if m == 1 or kind == "iid":
    return truth_iid(strategy, toy, m)
  return {"lattice": truth_strided, "stratified": truth_whole, "antithetic": truth_paired}[kind](
      strategy, toy, m
  )


def test_truths_by_hand():
  # maj@1 = P(answer 0); bon@2 of "mode_right" by hand over the two draws.
  assert truth_iid("majority", "mode_right", 1) == pytest.approx(0.4)
  probs = {t: p for t, (p, _, _) in enumerate(TOYS["mode_right"])}
  by_hand = sum(
      probs[a] * probs[b] * _credit("best_of_n", _type_samples("mode_right", _one_hot("mode_right", [a, b])))
      for a in probs
      for b in probs
  )
  assert truth_iid("best_of_n", "mode_right", 2) == pytest.approx(by_hand)
  # maj@2 of "mode_wrong": both 0 (0.09), or 0 against 1 or 2 (a tie, half credit), or 0 with none.
  assert truth_iid("majority", "mode_wrong", 2) == pytest.approx(0.09 + 2 * 0.3 * 0.6 * 0.5 + 2 * 0.3 * 0.1)
  # A fresh lattice of 1 point and a stratified group of 1 are one draw.
  for strategy in STRATEGY_NAMES:
    assert truth_strided(strategy, "mode_wrong", 1) == pytest.approx(truth_iid(strategy, "mode_wrong", 1))
    assert truth_whole(strategy, "mode_right", 1) == pytest.approx(truth_iid(strategy, "mode_right", 1))


# --- simulated groups --------------------------------------------------------------


def _samples(toy, u):
  """(answer ids, correct, scores) of the types at u."""
  types = _type_of(toy, u)
  answers = np.array([t[1] for t in TOYS[toy]])[types]
  scores = np.array([t[2] for t in TOYS[toy]])[types]
  return answers, answers == 0, scores


def _simulate(kind, seed, num_groups, n, num_problems=1):
  """(ids, correct, scores), each [num_problems * len(TOYS), num_groups, n], the toys in turn."""
  rng = np.random.default_rng(seed)
  parts = [
      _samples(toy, group_uniforms(kind, rng, num_groups * num_problems, n).reshape(num_problems, num_groups, n))
      for toy in TOY_NAMES
  ]
  return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def _estimate(strategy, data, sampler, k, **kwargs):
  ids, correct, scores = data
  return metrics.strategy_at_k(
      strategy, answer_ids=ids, correct=correct, scores=None if strategy == "majority" else scores,
      sampler=sampler, k=k, **kwargs,
  )


@pytest.fixture(scope="module")
def coupled():
  return {kind: _simulate(kind, 20240611 + i, R, N) for i, kind in enumerate(("lattice", "stratified", "antithetic"))}


# --- unbiased by simulation ------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, ks",
    [("lattice", [1, 2, 4, 8]), ("stratified", [1, 8]), ("antithetic", [1, 2, 4, 6, 8])],
)
@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_coupled_estimators_are_unbiased(coupled, kind, ks, strategy):
  t = hoeffding_t(R)  # about 0.023
  for k in ks:
    got = _estimate(strategy, coupled[kind], S(kind), k)
    want = [truth(kind, strategy, toy, k) for toy in TOY_NAMES]
    np.testing.assert_allclose(got, want, atol=t, rtol=0, err_msg=f"{kind} {strategy}@{k}")


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_iid_estimators_are_unbiased_exact_subsets(strategy):
  # Pools of R n = 2 x 4 = 8 samples: C(8, k) <= 70 subsets, all enumerated.
  data = _simulate("iid", 7 + STRATEGY_NAMES.index(strategy), 2, 4, num_problems=M)
  t = hoeffding_t(M)
  for k in (1, 2, 3, 5, 8):
    assert math.comb(8, k) <= metrics.NUM_SUBSETS
    got = _estimate(strategy, data, S("iid"), k).reshape(len(TOYS), M).mean(axis=1)
    want = [truth_iid(strategy, toy, k) for toy in TOY_NAMES]
    np.testing.assert_allclose(got, want, atol=t, rtol=0, err_msg=f"{strategy}@{k}")


@pytest.mark.parametrize("strategy", ["majority", "weighted"])
def test_iid_estimators_are_unbiased_random_subsets(strategy):
  # Pools of 4 x 8 = 32 samples and only 64 subsets each: C(32, k) > 64, so drawn.
  data = _simulate("iid", 17 + STRATEGY_NAMES.index(strategy), 4, 8, num_problems=M)
  t = hoeffding_t(M)
  for k in (4, 6):
    assert math.comb(32, k) > 64
    got = _estimate(strategy, data, S("iid"), k, num_subsets=64, seed=3)
    got = got.reshape(len(TOYS), M).mean(axis=1)
    want = [truth_iid(strategy, toy, k) for toy in TOY_NAMES]
    np.testing.assert_allclose(got, want, atol=t, rtol=0, err_msg=f"{strategy}@{k}")


def test_iid_best_of_n_is_unbiased_at_large_pools():
  # Ranks: exact over all C(64, k) subsets at any size.
  data = _simulate("iid", 29, 8, 8, num_problems=M)
  t = hoeffding_t(M)
  for k in (4, 16):
    got = _estimate("best_of_n", data, S("iid"), k).reshape(len(TOYS), M).mean(axis=1)
    want = [truth_iid("best_of_n", toy, k) for toy in TOY_NAMES]
    np.testing.assert_allclose(got, want, atol=t, rtol=0, err_msg=f"bon@{k}")


def _expected_pooled_within_lattice(strategy, toy, n, k):
  """Exact mean, over n-point lattices, of the strategy's credit averaged over ALL k-subsets of the group."""
  breaks = np.unique(np.concatenate([[0.0, 1.0 / n], _edges(toy) % (1.0 / n)]))
  total = 0.0
  for lo, hi in zip(breaks, breaks[1:]):
    types = _type_of(toy, (np.arange(n) / n + (lo + hi) / 2) % 1.0)
    credits = [
        _credit(strategy, _type_samples(toy, _one_hot(toy, types[list(subset)])))
        for subset in itertools.combinations(range(n), k)
    ]
    total += (hi - lo) * n * np.mean(credits)
  return total


@pytest.mark.parametrize("strategy, toy", [("majority", "mode_right"), ("best_of_n", "mode_right"),
                                           ("weighted", "mode_wrong")])
def test_iid_estimator_on_lattice_groups_is_biased(coupled, strategy, toy):
  # Negative control: treating each lattice group of 8 as an i.i.d. pool
  # (all its 4-subsets) estimates the exact expectation of that misuse, far
  # from the lattice's value at 4: the simulation above would see this bias.
  t = hoeffding_t(R)
  row = TOY_NAMES.index(toy)
  pools = tuple(a[row].reshape(R, 1, N) for a in coupled["lattice"])
  misused = _estimate(strategy, pools, S("iid"), 4).mean()
  expected = _expected_pooled_within_lattice(strategy, toy, N, 4)
  lattice = truth_strided(strategy, toy, 4)
  assert abs(expected - lattice) > 6 * t  # 0.148 to 0.157, t = 0.023.
  assert abs(misused - expected) < t
  assert abs(misused - lattice) > 3 * t
  np.testing.assert_allclose(_estimate(strategy, coupled["lattice"], S("lattice"), 4)[row], lattice, atol=t, rtol=0)


# --- exact on small inputs -----------------------------------------------------------


def _random_groups(seed, shape, num_answers=3):
  """Small groups with many ties: few answers, integer scores."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(-1, num_answers, size=shape)
  right = rng.random((shape[0], num_answers)) < 0.5
  correct = (ids >= 0) & np.take_along_axis(right, np.maximum(ids, 0).reshape(shape[0], -1), axis=1).reshape(shape)
  scores = rng.integers(0, 3, size=shape).astype(np.float64)
  return ids, correct, scores


def _brute_force(strategy, data, rows):
  """Mean over groups and the given slot subsets of the definition's credit."""
  ids, correct, scores = data
  out = []
  for p in range(ids.shape[0]):
    values = [
        _credit(strategy, [(ids[p, r, i], correct[p, r, i], scores[p, r, i]) for i in row])
        for r in range(ids.shape[1])
        for row in rows
    ]
    out.append(np.mean(values))
  return np.array(out)


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_iid_equals_enumeration(strategy):
  data = _random_groups(1, (4, 2, 4))
  pooled = tuple(a.reshape(4, 1, 8) for a in data)
  for k in range(1, 9):
    want = _brute_force(strategy, pooled, list(itertools.combinations(range(8), k)))
    got = _estimate(strategy, data, S("iid"), k)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"{strategy}@{k}")


@pytest.mark.parametrize(
    "sampler, n, ks",
    [("lattice", 8, [1, 2, 4, 8]), ("sobol", 8, [1, 2, 4, 8]), ("antithetic", 6, [1, 2, 4, 6]),
     ("stratified", 4, [1, 4])],
)
@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_coupled_equals_enumeration(sampler, n, ks, strategy):
  data = _random_groups(2, (3, 5, n))
  for k in ks:
    want = _brute_force(strategy, data, metrics.valid_subgroups(S(sampler), n, k))
    got = _estimate(strategy, data, S(sampler), k)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"{sampler} {strategy}@{k}")


def test_best_of_n_ranks_equal_enumeration_with_many_ties():
  # Every score equal within a problem: ties everywhere, answered samples first.
  ids, correct, _ = _random_groups(3, (5, 3, 3))
  scores = np.ones(ids.shape)
  pooled = tuple(a.reshape(5, 1, 9) for a in (ids, correct, scores))
  for k in range(1, 10):
    want = _brute_force("best_of_n", pooled, list(itertools.combinations(range(9), k)))
    got = metrics.best_of_n_at_k(ids, correct, scores, sampler=S("iid"), k=k)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_random_subsets_average_to_the_enumeration():
  # 40 seeds x 500 uniform subsets (fewer than the C(12, 5) = 792, so drawn),
  # each credit in [0, 1] and independent given the data: their mean is
  # within hoeffding_t(20000) of the mean over all 792 subsets.
  ids, correct, scores = _random_groups(4, (3, 3, 4))
  exact = metrics.majority_at_k(ids, correct, sampler=S("iid"), k=5)
  exact_weighted = metrics.weighted_vote_at_k(ids, correct, scores, sampler=S("iid"), k=5)
  want = _brute_force("majority", tuple(a.reshape(3, 1, 12) for a in (ids, correct, scores)),
                      list(itertools.combinations(range(12), 5)))
  np.testing.assert_allclose(exact, want, rtol=0, atol=1e-12)
  draws = np.array([metrics.majority_at_k(ids, correct, sampler=S("iid"), k=5, num_subsets=500, seed=s)
                    for s in range(40)])
  np.testing.assert_allclose(draws.mean(axis=0), exact, rtol=0, atol=hoeffding_t(40 * 500))
  assert not np.allclose(draws[0], draws[1])  # the seed matters...
  np.testing.assert_array_equal(  # ...and fixes the result.
      draws[0], metrics.majority_at_k(ids, correct, sampler=S("iid"), k=5, num_subsets=500, seed=0)
  )
  np.testing.assert_array_equal(  # at least C(12, 5) subsets: all of them, whatever the seed.
      exact, metrics.majority_at_k(ids, correct, sampler=S("iid"), k=5, num_subsets=792, seed=9)
  )
  weighted = np.array([
      metrics.weighted_vote_at_k(ids, correct, scores, sampler=S("iid"), k=5, num_subsets=500, seed=s)
      for s in range(40)
  ])
  np.testing.assert_allclose(weighted.mean(axis=0), exact_weighted, rtol=0, atol=hoeffding_t(40 * 500))


def test_replication_is_the_mean_over_whole_groups():
  ids, correct, scores = _random_groups(5, (3, 6, 4))
  got = metrics.best_of_n_at_k(ids, correct, scores, sampler=S("stratified"), k=4)
  for p in range(3):
    want = np.mean([_credit("best_of_n", list(zip(ids[p, r], correct[p, r], scores[p, r]))) for r in range(6)])
    assert got[p] == pytest.approx(want, abs=1e-12)


def test_pass_is_pass_at_k():
  ids, correct, _ = _random_groups(6, (4, 3, 8))
  for sampler, k in (("iid", 5), ("lattice", 4), ("sobol", 8)):
    np.testing.assert_array_equal(
        metrics.strategy_at_k("pass", correct=correct, sampler=S(sampler), k=k),
        metrics.pass_at_k(correct, sampler=S(sampler), k=k),
    )
  np.testing.assert_array_equal(
      metrics.strategy_at_k("pass", answer_ids=ids, correct=correct, sampler="independent", k=3),
      metrics.pass_at_k(correct, sampler="independent", k=3),
  )


def test_strategy_functions_agree_with_the_dispatch():
  ids, correct, scores = _random_groups(7, (3, 4, 4))
  weights = scores / 2
  np.testing.assert_array_equal(
      metrics.majority_at_k(ids, correct, sampler=S("lattice"), k=2),
      metrics.strategy_at_k("majority", answer_ids=ids, correct=correct, sampler=S("lattice"), k=2),
  )
  np.testing.assert_array_equal(
      metrics.weighted_vote_at_k(ids, correct, weights, sampler=S("iid"), k=3),
      metrics.strategy_at_k("weighted", answer_ids=ids, correct=correct, scores=weights, sampler="independent", k=3),
  )
  np.testing.assert_array_equal(
      metrics.best_of_n_at_k(ids, correct, scores, sampler=S("sobol"), k=4),
      metrics.strategy_at_k("best_of_n", answer_ids=ids, correct=correct, scores=scores, sampler="dyadic", k=4),
  )


def test_keyed_picks_average_to_the_estimate():
  # The estimator gives tied answers equal credit: the expectation of the
  # keyed rule over a random tie seed. Over 3000 seeds the keyed picks of the
  # whole groups average to it (Hoeffding over the seeds, each seed's mean
  # over the 3 groups in [0, 1]).
  ids = np.array([[[0, 1, 1, 0], [2, 0, 2, 0], [1, 1, 0, 2]]])
  correct = ids == 0
  estimate = metrics.majority_at_k(ids, correct, sampler=S("lattice"), k=4)[0]
  assert estimate == pytest.approx((0.5 + 0.5 + 0.0) / 3)
  num_seeds = 3000
  picks = np.array([np.mean(metrics.majority_vote(ids[0], tie_seed=s) == 0) for s in range(num_seeds)])
  assert abs(picks.mean() - estimate) < hoeffding_t(num_seeds)


def test_majority_at_infinity():
  ids = np.array([[[0, 1, 1], [1, 2, 0]], [[0, 0, 1], [2, -1, -1]], [[-1, 3, 3], [4, 4, -1]]])
  correct = ids == 0
  np.testing.assert_allclose(metrics.majority_at_infinity(ids, correct), [0.0, 1.0, 0.0])
  correct[2] = ids[2] == 3  # a tie of 3 and 4: half credit.
  np.testing.assert_allclose(metrics.majority_at_infinity(ids, correct), [0.0, 1.0, 0.5])
  # The plurality of many samples: "mode_right" leads with answer 0, "mode_wrong" with 1.
  data = _simulate("iid", 31, 4, 500)
  np.testing.assert_array_equal(metrics.majority_at_infinity(data[0], data[1]), [1.0, 0.0])


def test_curves_feed_the_bootstrap_and_samples_saved(coupled):
  ks = [1, 2, 4, 8]
  lattice = np.stack([_estimate("majority", coupled["lattice"], S("lattice"), k) for k in ks], axis=1)
  iid_data = _simulate("iid", 37, 1000, N)
  iid = np.stack([_estimate("majority", iid_data, S("iid"), k, num_subsets=64) for k in ks], axis=1)
  ci = metrics.bootstrap_ci(lattice, seed=0, num_resamples=200)
  np.testing.assert_allclose(ci.mean, lattice.mean(axis=0))
  assert np.all(ci.low <= ci.mean) and np.all(ci.mean <= ci.high)
  saved = metrics.samples_saved(ks, lattice.mean(axis=0), iid.mean(axis=0), 8)
  interval = metrics.bootstrap_samples_saved(ks, lattice, iid, 8, seed=0, num_resamples=200)
  assert interval.estimate == saved
  assert interval.low <= interval.high


# --- bad input -----------------------------------------------------------------------


@pytest.fixture()
def small():
  return _random_groups(8, (2, 3, 4))


def test_unknown_strategy_lists_the_allowed_names(small):
  ids, correct, _ = small
  with pytest.raises(ValueError, match=r"strategy must be one of \('pass', 'majority', 'weighted', 'best_of_n'\), got 'vote'"):
    metrics.strategy_at_k("vote", answer_ids=ids, correct=correct, sampler=S("iid"), k=2)


def test_k_must_suit_the_sampler(small):
  ids, correct, scores = small
  with pytest.raises(ValueError, match=r"maj@k: k=2 is not a valid sub-group size for sampler 'stratified'.*allowed sizes: \[1, 4\]"):
    metrics.majority_at_k(ids, correct, sampler=S("stratified"), k=2)
  with pytest.raises(ValueError, match=r"bon@k: k=3 is not a valid sub-group size for sampler 'lattice'.*allowed sizes: \[1, 2, 4\]"):
    metrics.best_of_n_at_k(ids, correct, scores, sampler=S("lattice"), k=3)
  with pytest.raises(ValueError, match=r"weighted@k: k=8 exceeds the group size 4"):
    metrics.weighted_vote_at_k(ids, correct, scores, sampler=S("antithetic"), k=8)
  with pytest.raises(ValueError, match=r"k=13 exceeds the 12 pooled i.i.d. samples per problem .*maj@k needs"):
    metrics.majority_at_k(ids, correct, sampler=S("iid"), k=13)
  with pytest.raises(ValueError, match=r"k must be an int >= 1, got 0"):
    metrics.majority_at_k(ids, correct, sampler=S("iid"), k=0)
  with pytest.raises(ValueError, match=r"group size correct.shape\[2\]=6 is not a group size sampler 'sobol'"):
    metrics.majority_at_k(*(np.zeros((1, 1, 6), dtype=int),) * 2, sampler=S("sobol"), k=1)


def test_scores_are_checked(small):
  ids, correct, scores = small
  with pytest.raises(ValueError, match=r"scores must have the shape of the answer ids \(2, 3, 4\).*got shape \(2, 3\)"):
    metrics.best_of_n_at_k(ids, correct, scores[..., 0], sampler=S("iid"), k=2)
  bad = scores.copy()
  bad[1, 2, 3] = np.nan
  with pytest.raises(ValueError, match=r"scores must be finite \(no NaN or inf\)"):
    metrics.best_of_n_at_k(ids, correct, bad, sampler=S("iid"), k=2)
  with pytest.raises(ValueError, match=r"scores must be finite"):
    metrics.weighted_vote_at_k(ids, correct, bad, sampler=S("lattice"), k=2)
  with pytest.raises(ValueError, match=r"scores must be >= 0 \(weights"):
    metrics.weighted_vote_at_k(ids, correct, scores - 5.0, sampler=S("iid"), k=2)
  with pytest.raises(ValueError, match=r"scores is required for strategy 'best_of_n'"):
    metrics.strategy_at_k("best_of_n", answer_ids=ids, correct=correct, sampler=S("iid"), k=2)
  with pytest.raises(ValueError, match=r"scores is not used by strategy 'majority'"):
    metrics.strategy_at_k("majority", answer_ids=ids, correct=correct, scores=scores, sampler=S("iid"), k=2)


def test_answers_are_checked(small):
  ids, correct, _ = small
  with pytest.raises(ValueError, match=r"answer_ids must hold integer answer ids .*got dtype float64"):
    metrics.majority_at_k(ids.astype(float), correct, sampler=S("iid"), k=2)
  with pytest.raises(ValueError, match=r"answer_ids must be 3-D, got shape \(2, 12\)"):
    metrics.majority_at_k(ids.reshape(2, 12), correct, sampler=S("iid"), k=2)
  with pytest.raises(ValueError, match=r"answer_ids \(2, 3, 2\) and correct \(2, 3, 4\) must have the same shape"):
    metrics.majority_at_k(ids[..., :2], correct, sampler=S("iid"), k=2)
  with pytest.raises(ValueError, match=r"answer_ids is required for strategy 'majority'"):
    metrics.strategy_at_k("majority", correct=correct, sampler=S("iid"), k=2)
  with pytest.raises(ValueError, match=r"correct must be a bool array"):
    metrics.majority_at_k(ids, correct.astype(float), sampler=S("iid"), k=2)


def test_correct_must_be_per_answer():
  ids = np.array([[[0, 0, 1, -1]]])
  with pytest.raises(ValueError, match=r"in problem 0 answer id 0 is both correct and incorrect"):
    metrics.majority_at_k(ids, np.array([[[True, False, False, False]]]), sampler=S("iid"), k=2)
  with pytest.raises(ValueError, match=r"correct must be False where answer_ids is -1.*problem 0"):
    metrics.majority_at_k(ids, np.array([[[True, True, False, True]]]), sampler=S("iid"), k=2)


def test_sampler_and_subset_arguments_are_checked(small):
  ids, correct, _ = small
  with pytest.raises(ValueError, match=r"sampler='lattice_code' is not a group structure"):
    metrics.majority_at_k(ids, correct, sampler="lattice_code", k=2)
  with pytest.raises(ValueError, match=r"num_subsets must be an int >= 1, got 0"):
    metrics.majority_at_k(ids, correct, sampler=S("iid"), k=2, num_subsets=0)
  with pytest.raises(ValueError, match=r"seed must be an int >= 0, got -2"):
    metrics.majority_at_k(ids, correct, sampler=S("iid"), k=2, seed=-2)
