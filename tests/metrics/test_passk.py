"""pass_at_k, its building blocks, valid sub-groups and the union bound: exact cases and errors."""

import fractions
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
