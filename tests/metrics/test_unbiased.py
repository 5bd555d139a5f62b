"""Unbiasedness of the estimators against exact truths, by simulation in numpy.

Model: a problem is a bin B = [a, a + p) of [0, 1) (mod 1, so it may wrap);
a slot solves it iff its uniform lands in B. Groups of n slots are drawn as
  iid:        u_i independent uniforms;
  lattice:    u_i = (i/n + D) mod 1, one D ~ U[0, 1) per group;
  stratified: u_i = (pi(i) + V_i)/n, pi a uniform permutation;
  antithetic: (u_{2j}, u_{2j+1}) = (w_j, 1 - w_j), w_j independent.
Exact truths for a group of m: iid 1 - (1 - p)^m; lattice min(1, m p) (an arc
of length p holds floor(m p) or ceil(m p) of m evenly spaced points);
stratified 1 - prod_j (1 - m |B n [j/m, (j+1)/m)|); antithetic
1 - (1 - q)^(m/2) with q = |B u (1 - B)| the pass@2 of one pair.

Thresholds. Every estimate is a mean over R independent groups of a
per-group value in [0, 1] (the group's "any correct", or its average over
sub-groups), so Hoeffding's inequality gives
P(|estimate - truth| >= t) <= 2 exp(-2 R t^2). Chen's estimator pooled over N
i.i.d. samples is a U-statistic of order k with kernel in [0, 1]; Hoeffding
(1963, section 5) gives the same bound with R replaced by floor(N / k). We
set t = hoeffding_t(R, DELTA) with DELTA = 1e-9 per compared value; this file
compares fewer than 1000 values, so a correct implementation fails with
probability < 1e-6 (and the seeds are fixed, so the outcome is
deterministic). Every bias this file asserts is larger than 3 t.
"""

import math

import numpy as np
import pytest

from qmotto import metrics
from qmotto.sampling import get_sampler as S

from .simulation import group_uniforms

DELTA = 1e-9
R = 50_000  # groups per simulation
N = 16  # group size

# (a, p): interior bins, a wrapping bin, a bin symmetric about 1/2 (where
# antithetic pairs help nothing), and p = 1/4 exactly (lattice pass@4 = 1).
BINS = [(0.17, 0.013), (0.61, 0.05), (0.3, 0.13), (0.9, 0.13), (0.45, 0.1), (0.05, 0.25)]


def hoeffding_t(num, delta=DELTA):
  """t with 2 exp(-2 num t^2) = delta."""
  return math.sqrt(math.log(2.0 / delta) / (2.0 * num))


T = hoeffding_t(R)  # about 0.0146


# --- simulation ---------------------------------------------------------------


def _correct(u):
  """bool[P, R, n]: slot solves problem (a, p) iff (u - a) mod 1 < p."""
  a = np.array([b[0] for b in BINS])[:, None, None]
  p = np.array([b[1] for b in BINS])[:, None, None]
  return ((u[None] - a) % 1.0) < p


@pytest.fixture(scope="module")
def groups():
  rng = np.random.default_rng(20240601)
  return {kind: _correct(group_uniforms(kind, rng, R, N)) for kind in ("iid", "lattice", "stratified", "antithetic")}


# --- exact truths ---------------------------------------------------------------


def _arc_overlap(a1, p1, a2, p2):
  """Length of [a1, a1 + p1) n [a2, a2 + p2) on the circle [0, 1)."""
  total = 0.0
  for s1 in (a1 - 1.0, a1, a1 + 1.0):
    lo, hi = max(s1, a2), min(s1 + p1, a2 + p2)
    total += max(0.0, hi - lo)
  return total


def _p(i):
  return BINS[i][1]


def truth(kind, i, m):
  a, p = BINS[i]
  if kind == "iid":
    return 1.0 - (1.0 - p) ** m
  if kind == "lattice":
    return min(1.0, m * p)
  if kind == "stratified":
    return 1.0 - math.prod(1.0 - m * _arc_overlap(a, p, j / m, 1.0 / m) for j in range(m))
  if kind == "antithetic":
    mirror = (1.0 - a - p) % 1.0  # 1 - B = (1 - a - p, 1 - a], same measure as [.,.).
    q = 2 * p - _arc_overlap(a, p, mirror, p)
    return 1.0 - (1.0 - q) ** (m // 2)
  raise ValueError(kind)


def test_truths_by_hand():
  assert truth("lattice", 2, 4) == pytest.approx(0.52)
  assert truth("antithetic", 4, 2) == pytest.approx(0.1)  # symmetric bin: q = p.
  assert truth("antithetic", 2, 2) == pytest.approx(0.26)  # disjoint mirror: q = 2p.
  assert truth("stratified", 5, 4) == pytest.approx(1.0 - 0.8 * 0.2)  # [.05,.3) over 1/4 strata.


# --- unbiased estimators ----------------------------------------------------------


@pytest.mark.parametrize("m", [1, 2, 4, 8])
def test_lattice_subgroup_estimator_is_unbiased(groups, m):
  got = metrics.pass_at_k(groups["lattice"], sampler=S("lattice"), k=m)
  want = [truth("lattice", i, m) for i in range(len(BINS))]
  np.testing.assert_allclose(got, want, atol=T, rtol=0)


def test_lattice_replication_estimator_is_unbiased(groups):
  got = metrics.pass_at_k(groups["lattice"], sampler=S("lattice"), k=N)
  np.testing.assert_allclose(got, [truth("lattice", i, N) for i in range(len(BINS))], atol=T, rtol=0)
  assert got[0] < 0.5  # p = 0.013: min(1, 16 p) = 0.208, not saturated.


@pytest.mark.parametrize("m", [1, 3, 16, 40])
def test_chen_on_iid_is_unbiased(groups, m):
  # Pooled over R groups of N: a U-statistic of order m on R * N samples.
  got = metrics.pass_at_k(groups["iid"], sampler=S("iid"), k=m)
  t = hoeffding_t((R * N) // m)
  np.testing.assert_allclose(got, [truth("iid", i, m) for i in range(len(BINS))], atol=t, rtol=0)


def test_stratified_replication_estimator_is_unbiased(groups):
  got = metrics.pass_at_k(groups["stratified"], sampler=S("stratified"), k=N)
  np.testing.assert_allclose(got, [truth("stratified", i, N) for i in range(len(BINS))], atol=T, rtol=0)
  got1 = metrics.pass_at_k(groups["stratified"], sampler=S("stratified"), k=1)
  np.testing.assert_allclose(got1, [_p(i) for i in range(len(BINS))], atol=T, rtol=0)


@pytest.mark.parametrize("m", [2, 4, 6, 16])
def test_antithetic_estimators_are_unbiased(groups, m):
  got = metrics.pass_at_k(groups["antithetic"], sampler=S("antithetic"), k=m)
  np.testing.assert_allclose(got, [truth("antithetic", i, m) for i in range(len(BINS))], atol=T, rtol=0)


# --- misuse is biased, and the tests above can tell --------------------------------


def _chen_per_group(correct, m):
  """Chen's estimator applied inside each group (treating it as i.i.d.), averaged."""
  n = correct.shape[2]
  return metrics.chen_pass_at_k(n, correct.sum(axis=2), m).mean(axis=1)


def _expected_chen_on_lattice(i, n, m):
  """Exact E[Chen(n, c, m)] for an n-point lattice: c = floor(np) + Bernoulli(frac(np))."""
  x = n * _p(i)
  lo, frac = math.floor(x), x - math.floor(x)
  values = metrics.chen_pass_at_k(n, np.array([lo, min(lo + 1, n)]), m)
  return (1 - frac) * values[0] + frac * values[1]


def test_chen_on_lattice_groups_is_biased(groups):
  m = 8
  got = _chen_per_group(groups["lattice"], m)
  for i in range(len(BINS)):
    expected = _expected_chen_on_lattice(i, N, m)
    # The simulation agrees with the exact expectation of the misused estimator...
    assert abs(got[i] - expected) < T
    # ...which is far from the truth min(1, 8p) for p in [0.1, 0.13]
    # (exact biases 0.14 to 0.22). It is unbiased for p < 1/16, where a group
    # holds at most one correct slot and Chen is linear in c, and only 0.04
    # off at p = 1/4, where both are near saturation.
    if 0.1 <= _p(i) <= 0.13:
      assert truth("lattice", i, m) - expected > 0.1 > 3 * T
  # p = 1/4, m = 4: every group has exactly 4 correct slots; Chen gives
  # 1 - C(12, 4)/C(16, 4) = 1 - 495/1820 for a truth of min(1, 4/4) = 1.
  assert _chen_per_group(groups["lattice"], 4)[5] == pytest.approx(1 - 495 / 1820, abs=1e-12)


def test_pooled_chen_on_lattice_groups_is_biased(groups):
  # Calling pass_at_k with the wrong sampler ("iid") on lattice samples pools
  # them and estimates about 1 - (1 - p)^m instead of min(1, m p).
  m = 8
  wrong = metrics.pass_at_k(groups["lattice"], sampler=S("iid"), k=m)
  right = metrics.pass_at_k(groups["lattice"], sampler=S("lattice"), k=m)
  for i in range(len(BINS)):
    assert abs(right[i] - truth("lattice", i, m)) < T
    if _p(i) >= 0.1:
      assert truth("lattice", i, m) - wrong[i] > 0.09 > 3 * T


def test_wrong_subgroups_on_lattice_are_biased(groups):
  # Contiguous blocks of a lattice are clustered (spacing 1/16, not 1/4): a
  # negative control showing that the unbiasedness checks have power.
  m = 4
  blocks = np.arange(N).reshape(N // m, m)
  got = metrics.pass_at_k_subgroups(groups["lattice"], blocks)
  # An arc of length p meets one of 4 points spaced 1/16 with probability
  # min(1, p + 3 min(p, 1/16)) (the union of 4 shifted windows of length p).
  for i in range(len(BINS)):
    want_blocks = min(1.0, _p(i) + 3 * min(_p(i), 1 / 16))
    assert abs(got[i] - want_blocks) < T
    assert truth("lattice", i, m) - got[i] > 3 * T or _p(i) < 0.1


def test_stratified_rejects_proper_subgroups(groups):
  for k in (2, 4, 8):
    with pytest.raises(ValueError, match=r"sampler 'stratified'.*allowed sizes: \[1, 16\]"):
      metrics.pass_at_k(groups["stratified"], sampler=S("stratified"), k=k)
  # Why: slots {0, ..., 3} of a stratified 16-group are not a stratified
  # 4-group. For the bin [0.05, 0.3), pass@4 of a fresh stratified group is
  # 1 - 0.8 * 0.2 = 0.84; four strata out of 16 give much less.
  blocks = np.arange(N).reshape(N // 4, 4)
  got = metrics.pass_at_k_subgroups(groups["stratified"], blocks)[5]
  assert truth("stratified", 5, 4) - got > 3 * T


def test_lattice_gains_over_iid(groups):
  # Sanity of the whole setup: the lattice reaches the union bound, i.i.d. does not.
  lattice = metrics.pass_at_k(groups["lattice"], sampler=S("lattice"), k=4)
  iid = metrics.pass_at_k(groups["iid"], sampler=S("iid"), k=4)
  bound = metrics.union_bound_per_problem([b[1] for b in BINS], 4)
  np.testing.assert_allclose(lattice, bound, atol=T, rtol=0)
  assert np.all(bound[2:] - iid[2:] > 3 * T)
