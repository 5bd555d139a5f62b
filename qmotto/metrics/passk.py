"""pass@k estimators for independent and coupled (RQMC) samplers.

Why a separate estimator for coupled samplers: the usual unbiased estimator
of Chen et al. (2021), 1 - C(n - c, k) / C(n, k), averages the indicator "some
sample is correct" over every k-subset of n samples. That is unbiased only
when every k-subset is distributed like k independent draws, i.e. for
independent samples. A k-subset of a coupled group is not a coupled group of
k (a random 4 points of a 16-point lattice are not a 4-point lattice), so on
coupled samples Chen's estimator is biased, typically toward i.i.d. pass@k.

Unbiased alternatives for a coupled sampler (METHOD.md, "Measuring correlated
samplers"), given R independently randomized groups of n samples each:
  * replication (k = n): the mean over the R groups of "any sample correct";
  * valid sub-groups (k < n): some subsets of a group are themselves
    distributed exactly like a fresh group of k samples of the same sampler
    (a lattice's stride subsets, a Sobol set's aligned dyadic blocks, a set of
    antithetic pairs). The mean over groups and over those sub-groups of "any
    sample correct" is unbiased for pass@k (the paper's dyadic bootstrap).
Averaging over several sub-groups of one group does not add bias, only
lowers the variance; the sub-groups of a group are dependent, so confidence
intervals must resample whole problems (see `bootstrap_ci`), not sub-groups.

Which sub-groups are valid (slot i of a group holds point i of the n-point
set):
  * iid: every subset (Chen's estimator pooled over all R * n samples is the
    average over all of them, and the best one).
  * lattice, code mode: for m dividing n, the n/m stride subsets
    {i : i = r mod n/m}: each is {(j/m + D + r/n) mod 1}, a shifted m-point
    lattice with a uniform shift.
  * lattice, token mode: only m = 1 and m = n. A stride subset is a shifted
    rank-1 lattice with generating vector z_n mod m, but a fresh m-point
    group uses the Korobov vector chosen for m (`qmc.generating_vector`),
    which differs in general (e.g. n = 64, m = 8: 1 vs 3 as multiplier), so
    the stride subset estimates pass@m of a different sampler.
  * sobol (either mode, either scramble), n = 2**L: for m = 2**j the n/m
    aligned blocks of consecutive slots [b m, (b + 1) m). In Gray-code order
    such a block is the first 2**j points digitally shifted, and Owen or
    LMS + digital-shift scrambling absorbs digital shifts.
  * antithetic (either mode): m = 1, and even m: the floor(n/m) aligned
    blocks [b m, (b + 1) m), each made of m/2 whole pairs (u, 1 - u).
  * stratified (either mode): only m = 1 and m = n; no proper subset of the
    strata is a stratified set of its size.
  * every sampler: m = 1 (each slot is an exact marginal draw) and m = n.

In code mode a sample's tokens depend only on its own starting coordinate and
on the group's shared rotations, so a subset of slots whose starting points
are distributed like a fresh m-point set gives sequences distributed exactly
like a fresh group of m.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from qmotto.metrics import _validate
from qmotto.sampling import samplers as samplers_lib

# valid_subgroups refuses to list more i.i.d. subsets than this (use Chen).
MAX_IID_SUBGROUPS = 1 << 20
# Elements of the gathered [P, R, S, m] array handled at once.
_GATHER_CHUNK = 1 << 24


def chen_pass_at_k(num_samples, num_correct, k: int) -> np.ndarray:
  """Chen et al. (2021) unbiased pass@k from n INDEPENDENT samples, c correct.

  Computes 1 - C(n - c, k) / C(n, k), the average over all k-subsets of the n
  samples of "some sample in the subset is correct", in a numerically stable
  product form: the ratio C(n - c, k) / C(n, k) is
  prod_{j<k} (1 - c / (n - j)) = prod_{j<c} (1 - k / (n - j)); the shorter
  product is summed in log1p form and the result is -expm1(sum), accurate
  also for tiny pass@k (no cancellation, no huge binomials).

  WARNING: only valid for INDEPENDENT samples (the "iid" sampler). On samples
  of a coupled sampler (lattice, Sobol, stratified, antithetic) a k-subset of
  the group is not a coupled group of k, and this estimator is biased; use
  `pass_at_k(correct, sampler=..., k=...)`, which picks a valid estimator.

  Args:
    num_samples: n, int or int array (>= k).
    num_correct: c, int or int array (0 <= c <= n); broadcast against n.
    k: int >= 1.

  Returns:
    float64 ndarray with the broadcast shape of n and c (0-d for scalars).

  Raises:
    ValueError: on negative or non-integer counts, c > n, k < 1 or k > n.
  """
  n = _validate.integer_array("num_samples", num_samples)
  c = _validate.integer_array("num_correct", num_correct)
  k = _validate.check_int("k", k, minimum=1)
  try:
    n, c = np.broadcast_arrays(n, c)
  except ValueError as error:
    raise ValueError(
        f"num_samples (shape {n.shape}) and num_correct (shape {c.shape}) must broadcast."
    ) from error
  if np.any(c > n):
    raise ValueError("num_correct must be <= num_samples for every entry.")
  if n.size and np.any(k > n):
    raise ValueError(
        f"k={k} exceeds num_samples (smallest n = {n.min()}); pass@k needs n >= k samples."
    )
  result = np.ones(n.shape, dtype=np.float64)
  # When n - c < k every k-subset holds a correct sample: pass@k = 1 exactly.
  some_fail = n - c >= k
  nn = n[some_fail].astype(np.float64)
  cc = c[some_fail]
  log_ratio = np.zeros(nn.shape, dtype=np.float64)
  if nn.size:
    max_c = int(cc.max())
    if k <= max_c:
      # prod_{j<k} (1 - c / (n - j)); n - j >= n - k + 1 >= c + 1 > 0.
      for j in range(k):
        log_ratio += np.log1p(-cc / (nn - j))
    else:
      # prod_{j<c} (1 - k / (n - j)); for j < c, n - j >= n - c + 1 >= k + 1.
      for j in range(max_c):
        active = j < cc
        denominator = np.where(active, nn - j, np.inf)
        log_ratio += np.where(active, np.log1p(-k / denominator), 0.0)
  result[some_fail] = -np.expm1(log_ratio) + 0.0  # + 0.0: no -0.0 for c = 0.
  return result


def _resolve_sampler(sampler) -> samplers_lib.Sampler:
  if not isinstance(sampler, (str, samplers_lib.Sampler)):
    raise ValueError(
        f"sampler must be a sampler name (one of {sorted(samplers_lib.SAMPLERS)}) "
        f"or a qmotto.Sampler, got {sampler!r} ({type(sampler).__name__})."
    )
  return samplers_lib.get_sampler(sampler)


def _check_group_size(sampler: samplers_lib.Sampler, group_size, arg: str = "group_size") -> int:
  group_size = _validate.check_int(arg, group_size, minimum=1)
  try:
    sampler.check_group_size(group_size)
  except ValueError as error:
    raise ValueError(
        f"{arg}={group_size} is not a group size sampler {sampler.name!r} can make: {error}"
    ) from error
  return group_size


def _allowed_sizes(sampler: samplers_lib.Sampler, n: int) -> list[int]:
  if sampler.independent:
    return list(range(1, n + 1))
  if sampler.points == "lattice" and sampler.mode == "code":
    return [m for m in range(1, n + 1) if n % m == 0]
  if sampler.points == "sobol":
    return [1 << j for j in range(n.bit_length()) if (1 << j) <= n]
  if sampler.points == "antithetic":
    return sorted({1, n} | set(range(2, n + 1, 2)))
  # stratified, lattice in token mode, and any point set this module does not
  # know: only single slots and the whole group.
  return sorted({1, n})


_RULES = {
    "lattice_code": "its valid sub-groups are the stride subsets, of sizes dividing the group size",
    "lattice_token": (
        "in token mode a stride subset is a lattice with another generating vector than a "
        "fresh group of that size, so only single slots and the whole group are valid"
    ),
    "sobol": "its valid sub-groups are aligned dyadic blocks, of power-of-two sizes",
    "antithetic": "its valid sub-groups are single slots or whole antithetic pairs (even sizes)",
    "stratified": "no proper subset of a stratified group is a stratified set",
}


def _rule(sampler: samplers_lib.Sampler) -> str:
  if sampler.points == "lattice":
    return _RULES[f"lattice_{sampler.mode}"]
  return _RULES.get(sampler.points, "only single slots and the whole group are known to be valid")


def _check_size(sampler: samplers_lib.Sampler, n: int, size, arg: str) -> int:
  size = _validate.check_int(arg, size, minimum=1)
  allowed = _allowed_sizes(sampler, n)
  if size > n:
    raise ValueError(
        f"{arg}={size} exceeds the group size {n}: sampler {sampler.name!r} is coupled, so "
        f"pass@{size} needs groups of at least {size} samples drawn together (allowed sizes "
        f"for groups of {n}: {allowed})."
    )
  if size not in allowed:
    raise ValueError(
        f"{arg}={size} is not a valid sub-group size for sampler {sampler.name!r} with groups "
        f"of {n} ({_rule(sampler)}); allowed sizes: {allowed}. For other sizes draw "
        f"separate groups of exactly that size."
    )
  return size


def allowed_subgroup_sizes(sampler, group_size: int) -> list[int]:
  """Sizes m for which a group of `group_size` samples has valid sub-groups.

  A sub-group is valid when it is distributed exactly like a fresh group of m
  samples of the same sampler, so "any correct" on it is unbiased for
  pass@m. See the module docstring for the rules per sampler.

  Args:
    sampler: a sampler name (see `qmotto.SAMPLERS`) or a `qmotto.Sampler`.
    group_size: n, the number of samples drawn together in one group.

  Returns:
    Increasing list of allowed sizes, always holding 1 and n.

  Raises:
    ValueError: for an unknown sampler, or a group size the sampler cannot
      make (e.g. Sobol with n not a power of two).
  """
  sampler = _resolve_sampler(sampler)
  n = _check_group_size(sampler, group_size)
  return _allowed_sizes(sampler, n)


def valid_subgroups(sampler, group_size: int, m: int) -> np.ndarray:
  """Slot indices of the valid sub-groups of size m of one group.

  Args:
    sampler: a sampler name (see `qmotto.SAMPLERS`) or a `qmotto.Sampler`.
    group_size: n, the number of samples drawn together in one group.
    m: sub-group size; must be in `allowed_subgroup_sizes(sampler, n)`.

  Returns:
    int64[num_subgroups, m]: row s holds the slots of sub-group s.
      * m = n: one row, all slots.
      * m = 1: every slot alone.
      * iid: all C(n, m) subsets (at most MAX_IID_SUBGROUPS; for more use
        `chen_pass_at_k`, which averages over all of them in closed form).
      * lattice (code mode), m | n: the n/m stride subsets
        {r, r + n/m, r + 2 n/m, ...}, r = 0 .. n/m - 1.
      * sobol, m = 2**j: the n/m aligned blocks [b m, (b + 1) m).
      * antithetic, even m: the floor(n/m) aligned blocks [b m, (b + 1) m).

  Raises:
    ValueError: naming the sampler and the allowed sizes when m is not valid.
  """
  sampler = _resolve_sampler(sampler)
  n = _check_group_size(sampler, group_size)
  m = _check_size(sampler, n, m, "m")
  slots = np.arange(n, dtype=np.int64)
  if m == n:
    return slots[None, :]
  if m == 1:
    return slots[:, None]
  if sampler.independent:
    count = math.comb(n, m)
    if count > MAX_IID_SUBGROUPS:
      raise ValueError(
          f"m={m}: an i.i.d. group of {n} has C({n}, {m}) = {count} subsets, more than "
          f"{MAX_IID_SUBGROUPS} to list; use chen_pass_at_k (or pass_at_k), which averages "
          "over all of them in closed form."
      )
    return np.array(list(itertools.combinations(range(n), m)), dtype=np.int64).reshape(count, m)
  if sampler.points == "lattice":
    stride = n // m
    return slots.reshape(m, stride).T.copy()  # row r: r, r + stride, ...
  if sampler.points in ("sobol", "antithetic"):
    num_blocks = n // m
    return slots[: num_blocks * m].reshape(num_blocks, m)
  raise AssertionError(f"unhandled sub-group rule for {sampler!r}, m={m}")  # pragma: no cover


def pass_at_k_replicated(correct) -> np.ndarray:
  """Replication estimator: mean over groups of "some sample of the group is correct".

  Unbiased for pass@k of any sampler when each of the R groups is an
  independently randomized group of exactly k samples.

  Args:
    correct: bool[P, R, k]: problems x independent groups x samples per group.

  Returns:
    float64[P].
  """
  correct = _validate.correctness_array("correct", correct, ndim=3)
  return np.any(correct, axis=2).mean(axis=1)


def pass_at_k_subgroups(correct, subgroups) -> np.ndarray:
  """Sub-group estimator: mean over groups and sub-groups of "any correct".

  Unbiased for pass@m only if EVERY row of `subgroups` is a valid sub-group
  of the sampler that drew the groups (a subset of slots distributed like a
  fresh group of m); get the rows from `valid_subgroups`, or use `pass_at_k`,
  which does this for you.

  Args:
    correct: bool[P, R, n]: problems x independent groups x group size.
    subgroups: int[S, m] slot indices in [0, n), no slot twice in a row.

  Returns:
    float64[P].
  """
  correct = _validate.correctness_array("correct", correct, ndim=3)
  n = correct.shape[2]
  subgroups = np.asarray(subgroups)
  if subgroups.ndim != 2 or 0 in subgroups.shape:
    raise ValueError(
        f"subgroups must be a non-empty 2-D int array [num_subgroups, m], got shape "
        f"{subgroups.shape}."
    )
  if not np.issubdtype(subgroups.dtype, np.integer):
    raise ValueError(f"subgroups must hold integer slot indices, got dtype {subgroups.dtype}.")
  if subgroups.min() < 0 or subgroups.max() >= n:
    raise ValueError(
        f"subgroups must hold slot indices in [0, {n}) (the group size of correct), got values "
        f"in [{subgroups.min()}, {subgroups.max()}]."
    )
  ordered = np.sort(subgroups, axis=1)
  if np.any(ordered[:, 1:] == ordered[:, :-1]):
    raise ValueError("subgroups: a row lists the same slot twice.")
  num_p, num_r, _ = correct.shape
  num_s, m = subgroups.shape
  rows_per_chunk = max(1, _GATHER_CHUNK // max(1, num_p * num_r * m))
  hits = np.zeros(num_p, dtype=np.float64)
  for start in range(0, num_s, rows_per_chunk):
    chunk = subgroups[start : start + rows_per_chunk]
    hits += np.any(correct[:, :, chunk], axis=3).sum(axis=(1, 2))
  return hits / (num_r * num_s)


def pass_at_k(correct, *, sampler, k: int) -> np.ndarray:
  """Unbiased pass@k per problem, with the estimator chosen for the sampler.

  * Independent sampler ("iid"): Chen et al.'s estimator on the R * n samples
    of a problem pooled (all groups together); any k <= R * n.
  * Coupled sampler, k = n: the replication estimator (mean over the R
    groups of "any sample correct").
  * Coupled sampler, k < n: the sub-group estimator over the valid
    sub-groups of size k (`valid_subgroups`); raises when k is not an
    allowed size (e.g. stratified with 1 < k < n, Sobol with k not a power
    of two, lattice with k not dividing n).

  The R groups of a problem must be independently randomized (different
  group ids / keys), and slot i of a group must hold point i of the sampler's
  n-point set (the order `qmotto.sample_sequences_batched` returns).

  Args:
    correct: bool[P, R, n]: problems x independent groups x samples per group.
    sampler: a sampler name (see `qmotto.SAMPLERS`) or a `qmotto.Sampler`,
      the one that drew the groups.
    k: int >= 1.

  Returns:
    float64[P] pass@k estimates; average them (and bootstrap over problems
    with `bootstrap_ci`) for the benchmark number.

  Raises:
    ValueError: on malformed input, k > n for a coupled sampler (or k > R * n
      for i.i.d.), or a k with no valid sub-groups.
  """
  sampler = _resolve_sampler(sampler)
  correct = _validate.correctness_array("correct", correct, ndim=3)
  _, num_r, n = correct.shape
  n = _check_group_size(sampler, n, "group size correct.shape[2]")
  k = _validate.check_int("k", k, minimum=1)
  if sampler.independent:
    if k > num_r * n:
      raise ValueError(
          f"k={k} exceeds the {num_r * n} pooled i.i.d. samples per problem "
          f"(R={num_r} groups x n={n}); pass@k needs at least k samples."
      )
    return chen_pass_at_k(num_r * n, correct.sum(axis=(1, 2)), k)
  k = _check_size(sampler, n, k, "k")
  if k == n:
    return pass_at_k_replicated(correct)
  return pass_at_k_subgroups(correct, valid_subgroups(sampler, n, k))


def _k_values(k) -> tuple[np.ndarray, bool]:
  """(float64 array of k values, whether k was a scalar)."""
  if np.ndim(k) == 0:
    return np.float64(_validate.check_int("k", k, minimum=1)), True
  return _validate.positive_int_vector("k", k).astype(np.float64), False


def union_bound_per_problem(pass_at_1, k) -> np.ndarray:
  """Per-problem ceiling min(1, k * p_i) of ANY marginal-preserving sampler.

  Every sample of such a sampler is an exact draw, so P(some of k samples is
  correct) <= sum of their success probabilities = k * p_i.

  Args:
    pass_at_1: float[P] per-problem success probabilities p_i (estimate them
      from many i.i.d. samples).
    k: int >= 1, or int[K] for several k at once.

  Returns:
    float64[P] (or [P, K] for an array k).
  """
  p = _validate.probability_array("pass_at_1", pass_at_1, ndim=1)
  ks, scalar = _k_values(k)
  if scalar:
    return np.minimum(1.0, ks * p)
  return np.minimum(1.0, p[:, None] * ks[None, :])


def union_bound(pass_at_1, k):
  """mean_i min(1, k * p_i): the pass@k ceiling averaged over problems.

  Much tighter than min(1, k * mean_i p_i) when the p_i differ. See
  `union_bound_per_problem`.

  Args:
    pass_at_1: float[P] per-problem success probabilities p_i.
    k: int >= 1, or int[K].

  Returns:
    float (or float64[K] for an array k).
  """
  per_problem = union_bound_per_problem(pass_at_1, k)
  mean = per_problem.mean(axis=0)
  return float(mean) if np.ndim(mean) == 0 else mean


def iid_pass_at_k_from_p(p, k) -> np.ndarray:
  """pass@k of k independent samples, 1 - (1 - p)^k, per problem.

  Args:
    p: float array of success probabilities in [0, 1] (any shape).
    k: int >= 1, or int[K] (adds a trailing axis of size K).

  Returns:
    float64 array of shape p.shape (+ (K,) for an array k).
  """
  p = _validate.probability_array("p", p)
  ks, scalar = _k_values(k)
  with np.errstate(divide="ignore"):
    log_miss = np.log1p(-p)  # -inf where p = 1.
  if scalar:
    return -np.expm1(ks * log_miss)
  return -np.expm1(log_miss[..., None] * ks)
