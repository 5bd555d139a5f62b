"""pass_at_k, its building blocks, valid sub-groups and the union bound: exact cases and errors."""

import fractions
import math
import itertools

import numpy as np
import pytest

from qmotto import metrics
from qmotto.sampling import get_sampler as S
from qmotto.sampling import samplers as samplers_lib


# --- allowed sizes and valid sub-groups -------------------------------------


@pytest.mark.parametrize(
    "sampler, n, want",
    [
        ("iid", 5, [1, 2, 3, 4, 5]),
        ("lattice", 12, [1, 2, 3, 4, 6, 12]),
        ("lattice", 16, [1, 2, 4, 8, 16]),
        ("lattice", 7, [1, 7]),
        ("lattice_token", 16, [1, 16]),
        ("sobol", 16, [1, 2, 4, 8, 16]),
        ("sobol_lms", 8, [1, 2, 4, 8]),
        ("sobol_code", 1, [1]),
        ("antithetic", 8, [1, 2, 4, 6, 8]),
        ("antithetic", 7, [1, 2, 4, 6, 7]),
        ("antithetic_token", 4, [1, 2, 4]),
        ("stratified", 16, [1, 16]),
        ("stratified_token", 12, [1, 12]),
    ],
)
def test_allowed_subgroup_sizes(sampler, n, want):
  assert metrics.allowed_subgroup_sizes(S(sampler), n) == want
  assert metrics.allowed_subgroup_sizes(S(sampler).group_structure, n) == want  # the structure alone.


def test_allowed_sizes_accepts_a_sampler_object():
  assert metrics.allowed_subgroup_sizes(samplers_lib.Sampler("lattice", "token"), 8) == [1, 8]
  assert metrics.allowed_subgroup_sizes(samplers_lib.Sampler("lattice", "code"), 8) == [1, 2, 4, 8]
  assert metrics.allowed_subgroup_sizes(samplers_lib.Sampler("stratified", "token"), 8) == [1, 8]


def test_lattice_stride_subsets():
  got = metrics.valid_subgroups(S("lattice"), 12, 4)
  np.testing.assert_array_equal(got, [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]])
  # Each stride subset of {i/12 + D} is {j/4 + D'}: exact rational check.
  for row in got:
    points = sorted(fractions.Fraction(int(i), 12) for i in row)
    gaps = [b - a for a, b in zip(points, points[1:])] + [points[0] + 1 - points[-1]]
    assert gaps == [fractions.Fraction(1, 4)] * 4


def test_sobol_and_antithetic_blocks():
  np.testing.assert_array_equal(
      metrics.valid_subgroups(S("sobol"), 8, 2), [[0, 1], [2, 3], [4, 5], [6, 7]]
  )
  np.testing.assert_array_equal(metrics.valid_subgroups(S("sobol_lms"), 8, 4), [[0, 1, 2, 3], [4, 5, 6, 7]])
  np.testing.assert_array_equal(metrics.valid_subgroups(S("antithetic"), 8, 6), [[0, 1, 2, 3, 4, 5]])
  np.testing.assert_array_equal(metrics.valid_subgroups(S("antithetic"), 7, 2), [[0, 1], [2, 3], [4, 5]])


@pytest.mark.parametrize("sampler", sorted(samplers_lib.SAMPLERS))
def test_sizes_one_and_all_are_always_valid(sampler):
  n = 8
  np.testing.assert_array_equal(metrics.valid_subgroups(S(sampler), n, 1), np.arange(n)[:, None])
  np.testing.assert_array_equal(metrics.valid_subgroups(S(sampler), n, n), np.arange(n)[None, :])


def test_iid_subgroups_are_all_subsets():
  got = metrics.valid_subgroups(S("iid"), 5, 3)
  assert got.shape == (10, 3)
  assert sorted(map(tuple, got)) == list(itertools.combinations(range(5), 3))
  with pytest.raises(ValueError, match=r"use chen_pass_at_k"):
    metrics.valid_subgroups(S("iid"), 64, 32)


@pytest.mark.parametrize(
    "sampler, n, m, match",
    [
        ("stratified", 16, 4, r"m=4 is not a valid sub-group size for sampler 'stratified'.*allowed sizes: \[1, 16\]"),
        ("lattice", 12, 5, r"sampler 'lattice'.*allowed sizes: \[1, 2, 3, 4, 6, 12\]"),
        ("lattice_token", 16, 4, r"in token mode.*allowed sizes: \[1, 16\]"),
        ("sobol", 16, 6, r"power-of-two.*allowed sizes: \[1, 2, 4, 8, 16\]"),
        ("antithetic", 8, 3, r"even sizes.*allowed sizes: \[1, 2, 4, 6, 8\]"),
        ("lattice", 8, 16, r"m=16 exceeds the group size 8"),
        ("lattice", 8, 0, r"m must be an int >= 1"),
        ("sobol", 12, 4, r"group_size=12 is not a group size sampler 'sobol' can make"),
        ("lattice", 0, 1, r"group_size must be an int >= 1"),
    ],
)
def test_valid_subgroups_errors(sampler, n, m, match):
  with pytest.raises(ValueError, match=match):
    metrics.valid_subgroups(S(sampler), n, m)


@pytest.mark.parametrize(
    "sampler, match",
    [
        ("lattice", r"sampler='lattice' is not a group structure.*qmotto.get_sampler\('lattice'\)"),
        ("bogus", r"not a group structure.*one of \('independent', 'strided', 'dyadic', 'paired', 'whole'\)"),
        (3, r"sampler must be a qmotto.Sampler"),
        (None, r"sampler must be a qmotto.Sampler"),
    ],
)
def test_metrics_take_samplers_or_structures_not_names(sampler, match):
  with pytest.raises(ValueError, match=match):
    metrics.valid_subgroups(sampler, 8, 1)


def test_structure_names_work_alone():
  np.testing.assert_array_equal(metrics.valid_subgroups("strided", 4, 2), [[0, 2], [1, 3]])
  with pytest.raises(ValueError, match=r"group structure 'dyadic' can make"):
    metrics.allowed_subgroup_sizes("dyadic", 6)


# --- pass_at_k and its building blocks ---------------------------------------


def _random_correct(shape, p=0.3, seed=0):
  return np.random.default_rng(seed).random(shape) < p


def test_replicated_is_mean_of_any():
  correct = np.array(
      [[[0, 0, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 1, 0]]],
      dtype=bool,
  )
  np.testing.assert_array_equal(metrics.pass_at_k_replicated(correct), [0.5, 0.25])


def test_subgroups_by_hand():
  # One problem, two groups of 4; sub-groups {0, 2} and {1, 3}.
  correct = np.array([[[1, 0, 0, 0], [0, 0, 0, 1]]], dtype=bool)
  got = metrics.pass_at_k_subgroups(correct, [[0, 2], [1, 3]])
  np.testing.assert_array_equal(got, [0.5])  # (1 + 0 + 0 + 1) / 4.


def test_subgroups_chunking_matches_direct():
  correct = _random_correct((3, 50, 12), seed=1)
  subgroups = metrics.valid_subgroups(S("iid"), 12, 4)  # 495 rows.
  direct = np.any(correct[:, :, subgroups], axis=3).mean(axis=(1, 2))
  np.testing.assert_allclose(metrics.pass_at_k_subgroups(correct, subgroups), direct, rtol=1e-14)


def test_pass_at_k_iid_pools_all_groups():
  correct = _random_correct((4, 3, 8), seed=2)
  counts = correct.sum(axis=(1, 2))
  for k in (1, 5, 8, 20, 24):
    np.testing.assert_allclose(
        metrics.pass_at_k(correct, sampler=S("iid"), k=k), metrics.chen_pass_at_k(24, counts, k)
    )


def test_pass_at_k_iid_equals_mean_over_all_subsets_of_one_group():
  correct = _random_correct((3, 1, 7), seed=3)
  for k in range(1, 8):
    np.testing.assert_allclose(
        metrics.pass_at_k(correct, sampler=S("iid"), k=k),
        metrics.pass_at_k_subgroups(correct, metrics.valid_subgroups(S("iid"), 7, k)),
        rtol=1e-12,
    )


@pytest.mark.parametrize("sampler", sorted(samplers_lib.SAMPLERS))
def test_k1_is_the_mean_and_k_n_the_replication_estimator(sampler):
  correct = _random_correct((5, 6, 8), seed=4)
  np.testing.assert_allclose(metrics.pass_at_k(correct, sampler=S(sampler), k=1), correct.mean(axis=(1, 2)))
  if sampler != "iid":
    np.testing.assert_array_equal(
        metrics.pass_at_k(correct, sampler=S(sampler), k=8), metrics.pass_at_k_replicated(correct)
    )


def test_pass_at_k_lattice_uses_stride_subsets():
  # Group of 4: slots 0 and 2 correct. Stride-2 subsets {0, 2}, {1, 3}: 1/2.
  # (Contiguous halves {0, 1}, {2, 3} would give 1, Chen would give 5/6.)
  correct = np.array([[[1, 0, 1, 0]]], dtype=bool)
  np.testing.assert_array_equal(metrics.pass_at_k(correct, sampler=S("lattice"), k=2), [0.5])
  np.testing.assert_array_equal(metrics.pass_at_k(correct, sampler=S("sobol"), k=2), [1.0])
  np.testing.assert_allclose(metrics.pass_at_k(correct, sampler=S("iid"), k=2), [5 / 6])


def test_pass_at_k_accepts_a_structure_and_01_ints():
  correct = _random_correct((2, 3, 4), seed=5)
  got = metrics.pass_at_k(correct.astype(np.int32), sampler="dyadic", k=2)
  np.testing.assert_array_equal(got, metrics.pass_at_k(correct, sampler=S("sobol"), k=2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampler=S("stratified"), k=4), r"k=4 is not a valid sub-group size for sampler 'stratified'"),
        (dict(sampler=S("lattice"), k=3), r"k=3 is not a valid sub-group size.*allowed sizes: \[1, 2, 4, 8\]"),
        (dict(sampler=S("lattice"), k=16), r"k=16 exceeds the group size 8"),
        (dict(sampler=S("iid"), k=25), r"k=25 exceeds the 24 pooled i.i.d. samples"),
        (dict(sampler=S("sobol"), k=0), r"k must be an int >= 1"),
        (dict(sampler="nope", k=1), r"'nope' is not a group structure"),
    ],
)
def test_pass_at_k_errors(kwargs, match):
  correct = _random_correct((2, 3, 8))
  with pytest.raises(ValueError, match=match):
    metrics.pass_at_k(correct, **kwargs)


@pytest.mark.parametrize(
    "correct, match",
    [
        (np.zeros((3, 8), bool), r"correct must be 3-D"),
        (np.zeros((3, 0, 8), bool), r"no empty axis"),
        (np.full((2, 3, 8), 0.5), r"correct must be a bool array"),
        (np.full((2, 3, 8), 2), r"hold only 0 and 1"),
    ],
)
def test_pass_at_k_bad_correct(correct, match):
  with pytest.raises(ValueError, match=match):
    metrics.pass_at_k(correct, sampler=S("lattice"), k=1)


def test_pass_at_k_sobol_needs_power_of_two_groups():
  with pytest.raises(ValueError, match=r"group size correct.shape\[2\]=12 is not a group size sampler 'sobol'"):
    metrics.pass_at_k(np.zeros((1, 2, 12), bool), sampler=S("sobol"), k=4)


def test_pass_at_k_requires_keywords():
  with pytest.raises(TypeError):
    metrics.pass_at_k(np.zeros((1, 2, 4), bool), "lattice", 2)  # pylint: disable=too-many-function-args


@pytest.mark.parametrize(
    "subgroups, match",
    [
        ([0, 1], r"non-empty 2-D"),
        ([[0, 8]], r"slot indices in \[0, 8\)"),
        ([[-1, 0]], r"slot indices in \[0, 8\)"),
        ([[1, 1]], r"same slot twice"),
        ([[0.0, 1.0]], r"integer slot indices"),
    ],
)
def test_pass_at_k_subgroups_errors(subgroups, match):
  with pytest.raises(ValueError, match=match):
    metrics.pass_at_k_subgroups(np.zeros((1, 2, 8), bool), subgroups)


# --- union bound and i.i.d. reference ----------------------------------------


def test_union_bound_by_hand():
  p = np.array([0.0, 0.1, 0.5, 1.0])
  np.testing.assert_allclose(metrics.union_bound_per_problem(p, 4), [0.0, 0.4, 1.0, 1.0])
  assert metrics.union_bound(p, 4) == pytest.approx(0.6)
  # Far tighter than min(1, k * mean p) = 1 here.
  assert metrics.union_bound(p, 4) < min(1.0, 4 * p.mean())
  np.testing.assert_allclose(
      metrics.union_bound_per_problem(p, [1, 4]), [[0.0, 0.0], [0.1, 0.4], [0.5, 1.0], [1.0, 1.0]]
  )
  np.testing.assert_allclose(metrics.union_bound(p, [1, 2, 4]), [0.4, 0.55, 0.6])


def test_iid_pass_at_k_from_p():
  p = np.array([0.0, 0.1, 0.5, 1.0])
  np.testing.assert_allclose(metrics.iid_pass_at_k_from_p(p, 3), 1 - (1 - p) ** 3, rtol=1e-14)
  got = metrics.iid_pass_at_k_from_p(p, np.array([1, 2]))
  np.testing.assert_allclose(got, 1 - (1 - p[:, None]) ** np.array([1, 2]), rtol=1e-14)
  # Accurate for tiny p, where 1 - (1 - p)**k loses all digits.
  np.testing.assert_allclose(metrics.iid_pass_at_k_from_p(1e-18, 4), 4e-18, rtol=1e-12)
  # Never above the union bound.
  assert np.all(metrics.iid_pass_at_k_from_p(p, 8) <= metrics.union_bound_per_problem(p, 8))


@pytest.mark.parametrize(
    "fn, args, match",
    [
        (metrics.union_bound, ([0.1, 1.2], 2), r"pass_at_1 must hold probabilities in \[0, 1\]"),
        (metrics.union_bound, ([[0.1]], 2), r"pass_at_1 must be 1-D"),
        (metrics.union_bound, ([0.1, np.nan], 2), r"pass_at_1 must be finite"),
        (metrics.union_bound, ([0.1], 0), r"k must be an int >= 1"),
        (metrics.union_bound_per_problem, ([0.1], [1, 0]), r"k must hold ints >= 1"),
        (metrics.iid_pass_at_k_from_p, (-0.1, 2), r"p must hold probabilities in \[0, 1\]"),
        (metrics.iid_pass_at_k_from_p, (0.1, 1.5), r"k must be an int"),
    ],
)
def test_union_bound_and_iid_errors(fn, args, match):
  with pytest.raises(ValueError, match=match):
    fn(*args)


# --- the union bound from counts: bias correction and interval ---------------


def _expected_plug_in_by_hand(q, n, k):
  """E[min(1, k X / n)] for X ~ Binomial(n, q), summed term by term in exact binomials."""
  return sum(math.comb(n, j) * q**j * (1 - q) ** (n - j) * min(1.0, k * j / n) for j in range(n + 1))


@pytest.mark.parametrize("n, k", [(64, 64), (192, 16), (16, 8), (7, 3), (5, 1), (4, 9)])
def test_union_bound_corrected_is_the_plug_in_plus_its_bias_at_p_hat(n, k):
  c = np.arange(n + 1)
  got = metrics.union_bound_corrected_per_problem(c, n, k)
  plug_in = np.minimum(1.0, k * c / n)
  want = [2 * g - _expected_plug_in_by_hand(ci / n, n, k) for ci, g in zip(c, plug_in)]
  np.testing.assert_allclose(got, np.maximum(plug_in, want), rtol=1e-12, atol=1e-12)
  assert np.all(got >= plug_in) and got[0] == 0.0 and got[-1] == 1.0  # p_hat = 0 or 1: nothing to correct.
  if k == 1:  # min(1, p) = p is linear: the plug-in is unbiased already.
    np.testing.assert_allclose(got, plug_in, atol=1e-12)


def test_union_bound_corrected_by_hand_for_n_equal_k():
  # n = k: the plug-in is 1[c >= 1] and E[plug-in | p_hat] = 1 - (1 - p_hat)^n.
  n = 64
  c = np.array([0, 1, 2, 64])
  want = [0.0, 1 + (1 - 1 / n) ** n, 1 + (1 - 2 / n) ** n, 1.0]
  np.testing.assert_allclose(metrics.union_bound_corrected_per_problem(c, n, n), want, rtol=1e-12)
  # Several k at once, and one n per problem, give the same numbers.
  both = metrics.union_bound_corrected_per_problem(c, np.full(4, n), [4, n])
  np.testing.assert_allclose(both[:, 1], want, rtol=1e-12)
  np.testing.assert_allclose(both[:, 0], metrics.union_bound_corrected_per_problem(c, n, 4))


def test_bootstrap_union_bound_brackets_plug_in_and_corrected():
  c, n, ks = np.array([0, 1, 3, 20, 64, 7]), np.array([64, 64, 64, 64, 64, 100]), [1, 4, 16, 64]
  got = metrics.bootstrap_union_bound(c, n, ks, seed=0, num_resamples=300)
  np.testing.assert_allclose(got.estimate, metrics.union_bound(c / n, ks))
  np.testing.assert_allclose(got.corrected, metrics.union_bound_corrected_per_problem(c, n, ks).mean(0))
  assert np.all(got.low <= got.estimate) and np.all(got.estimate <= got.corrected)
  assert np.all(got.corrected <= got.high) and np.all(got.high <= 1.0)
  one = metrics.bootstrap_union_bound(c, n, 16, seed=0, num_resamples=300)
  assert isinstance(one.high, float) and one == tuple(float(x[2]) for x in got)  # same resamples for every k.
  # k = 1: nothing to correct; the interval is the plug-in's bootstrap interval.
  ci = metrics.bootstrap_ci(c / n, seed=0, num_resamples=300)
  assert got.low[0] == pytest.approx(ci.low) and got.high[0] == pytest.approx(ci.high)


@pytest.mark.parametrize(
    "args, match",
    [
        (([1, 5], 4, 2), r"num_correct must be <= num_samples"),
        (([1, 2], [4, 4, 4], 2), r"num_samples must be an int or an int array of shape \(2,\)"),
        (([1, 2], 0, 2), r"num_samples must be >= 1"),
        (([True, False], 4, 2), r"num_correct must hold integer counts"),
        (([[1]], 4, 2), r"num_correct must be a non-empty 1-D array"),
        (([1, 2], 4, 0), r"k must be an int >= 1"),
    ],
)
def test_union_bound_from_counts_errors(args, match):
  with pytest.raises(ValueError, match=match):
    metrics.bootstrap_union_bound(*args, seed=0)
  with pytest.raises(ValueError, match=match):
    metrics.union_bound_corrected_per_problem(*args)


def test_bootstrap_union_bound_covers_the_true_bound():
  # 256 problems with p_i spread over orders of magnitude (many near 1/k, where the plug-in's bias is
  # largest), 64 i.i.d. samples each, k = 16 and 64; the truth mean_i min(1, k p_i) is known.
  rng = np.random.default_rng(12345)
  p = 10 ** rng.uniform(-3, -0.5, size=256)
  ks, n, runs = np.array([16, 64]), 64, 200
  truth = np.minimum(1.0, p[:, None] * ks).mean(axis=0)
  misses, plug_in_misses = np.zeros(2, int), np.zeros(2, int)
  for run in range(runs):
    c = rng.binomial(n, p)
    got = metrics.bootstrap_union_bound(c, n, ks, seed=run, num_resamples=200)
    misses += (truth < got.low) | (truth > got.high)
    plain = metrics.bootstrap_ci(metrics.union_bound_per_problem(c / n, ks), seed=run, num_resamples=200)
    plug_in_misses += (truth < plain.low) | (truth > plain.high)
  # Threshold: a correct 95% interval misses in at most 5% of runs, so the misses of one k are at most
  # Binomial(200, 0.05): P(>= 29) = 3e-7, and < 6e-7 for either of the two k. (Measured over 2000 runs:
  # 0% at k = 16 and 1% at k = 64; the interval is conservative for these fixed problems.)
  assert np.all(misses < 29), misses
  # The plain plug-in's interval, which the bracket replaces, misses in about 75% of runs at k = 64:
  # P(Binomial(200, 0.745) <= 100) = 1e-13. This is what makes the setting a test of the correction.
  assert plug_in_misses[1] > 100, plug_in_misses
