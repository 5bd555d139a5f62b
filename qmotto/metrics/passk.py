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

Which sub-groups of a group are valid is the sampler's group structure
(`qmotto.metrics.subgroups`); a `qmotto.Sampler` gives its own as data
(`Sampler.group_structure`), so this package needs no sampler code.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from qmotto.metrics import _validate
from qmotto.metrics import bootstrap
from qmotto.metrics import subgroups as subgroups_lib

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
  k = _validate.int_argument("k", k, minimum=1)
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
    sampler: the `qmotto.Sampler` that drew the groups (e.g.
      `qmotto.get_sampler("lattice")`; anything with a `group_structure`),
      or its group structure, one of `GROUP_STRUCTURES`.
    k: int >= 1.

  Returns:
    float64[P] pass@k estimates; average them (and bootstrap over problems
    with `bootstrap_ci`) for the benchmark number.

  Raises:
    ValueError: on malformed input, k > n for a coupled sampler (or k > R * n
      for i.i.d.), or a k with no valid sub-groups.
  """
  structure = subgroups_lib.GroupStructure.of(sampler)
  correct = _validate.correctness_array("correct", correct, ndim=3)
  _, num_r, n = correct.shape
  n = structure.check_group_size(n, "group size correct.shape[2]")
  k = _validate.int_argument("k", k, minimum=1)
  if structure.independent:
    if k > num_r * n:
      raise ValueError(
          f"k={k} exceeds the {num_r * n} pooled i.i.d. samples per problem "
          f"(R={num_r} groups x n={n}); pass@k needs at least k samples."
      )
    return chen_pass_at_k(num_r * n, correct.sum(axis=(1, 2)), k)
  k = structure.check_size(n, k, "k")
  if k == n:
    return pass_at_k_replicated(correct)
  return pass_at_k_subgroups(correct, structure.subgroups(n, k))


def _k_values(k) -> tuple[np.ndarray, bool]:
  """(float64 array of k values, whether k was a scalar)."""
  if np.ndim(k) == 0:
    return np.float64(_validate.int_argument("k", k, minimum=1)), True
  return _validate.positive_int_vector("k", k).astype(np.float64), False


def union_bound_per_problem(pass_at_1, k) -> np.ndarray:
  """Per-problem ceiling min(1, k * p_i) of ANY marginal-preserving sampler.

  Every sample of such a sampler is an exact draw, so P(some of k samples is
  correct) <= sum of their success probabilities = k * p_i.

  Args:
    pass_at_1: float[P] per-problem success probabilities p_i. With exact p_i
      this is the bound itself; with estimated p_i it is a plug-in, biased low
      (see `union_bound_corrected_per_problem` and `bootstrap_union_bound`).
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

  Much tighter than min(1, k * mean_i p_i) when the p_i differ. With
  ESTIMATED p_i this plug-in is biased low: min(1, k p) is concave, so
  E[min(1, k p_hat)] <= min(1, k p). The gap is largest for a problem with p
  near 1/k: about 0.4 sqrt(k / n) with n samples behind p_hat (the normal
  approximation of E[(k p_hat - 1)+]; exact binomial sums give 0.365 at
  n = k = 64 and 0.194 at n = 256, k = 64). An exact sampler can
  then appear to beat it; use `bootstrap_union_bound` for counts of samples.

  Args:
    pass_at_1: float[P] per-problem success probabilities p_i.
    k: int >= 1, or int[K].

  Returns:
    float (or float64[K] for an array k).
  """
  per_problem = union_bound_per_problem(pass_at_1, k)
  mean = per_problem.mean(axis=0)
  return float(mean) if np.ndim(mean) == 0 else mean


def _counts(num_correct, num_samples) -> tuple[np.ndarray, np.ndarray]:
  """(c int64[P], n int64[P]) checked: n >= 1, 0 <= c <= n."""
  c = _validate.integer_array("num_correct", num_correct)
  if c.ndim != 1 or c.size == 0:
    raise ValueError(f"num_correct must be a non-empty 1-D array [P], got shape {c.shape}.")
  n = _validate.integer_array("num_samples", num_samples)
  if n.ndim not in (0, 1) or (n.ndim == 1 and n.shape != c.shape):
    raise ValueError(
        f"num_samples must be an int or an int array of shape {c.shape} (num_correct's), "
        f"got shape {n.shape}."
    )
  n = np.broadcast_to(n, c.shape)
  if np.any(n < 1):
    raise ValueError(f"num_samples must be >= 1 for every problem, got a minimum of {n.min()}.")
  if np.any(c > n):
    raise ValueError("num_correct must be <= num_samples for every problem.")
  return c, n


def _expected_plug_in(q: np.ndarray, n: int, k: float) -> np.ndarray:
  """E[min(1, k X / n)] for X ~ Binomial(n, q), per entry of q (float64[P]).

  Written as 1 - E[(1 - k X / n)+]: only the terms j < n / k enter, each
  binomial probability in log form (no huge binomial coefficients).
  """
  out = np.where(q >= 1.0, 1.0, 0.0)  # q = 0: X = 0 always; q = 1: X = n.
  inside = (q > 0.0) & (q < 1.0)
  if not np.any(inside):
    return out
  terms = np.arange(int(np.ceil(n / k)))  # j with k j < n.
  log_choose = np.concatenate([[0.0], np.cumsum(np.log(n - terms[:-1]) - np.log(terms[:-1] + 1.0))])
  weight = 1.0 - k * terms / n
  qi = q[inside]
  chunk = max(1, _GATHER_CHUNK // max(1, terms.size))
  shortfall = np.empty(qi.shape)
  for start in range(0, qi.size, chunk):
    qc = qi[start : start + chunk, None]
    log_pmf = log_choose + terms * np.log(qc) + (n - terms) * np.log1p(-qc)
    shortfall[start : start + chunk] = np.exp(log_pmf) @ weight
  out[inside] = 1.0 - np.clip(shortfall, 0.0, 1.0)
  return out


def union_bound_corrected_per_problem(num_correct, num_samples, k) -> np.ndarray:
  """Per-problem min(1, k p_i) from counts, with the plug-in's bias removed to first order.

  The plug-in g(p_hat) = min(1, k p_hat), p_hat = c / n, is biased low (g is
  concave). This returns 2 g(p_hat) - E[g(X / n)] with X ~ Binomial(n, p_hat):
  the plug-in plus its bias as estimated at p_hat (a parametric-bootstrap
  bias correction, computed exactly). It is >= the plug-in (Jensen) and can
  exceed 1 for one problem; its mean over problems is close to unbiased for
  mean_i min(1, k p_i) (tested in tests/metrics/test_passk.py).

  The correction assumes c is about as variable as a binomial count. Pooled
  counts of coupled groups (every sample still an exact draw) are usually
  less variable, which makes the correction larger than needed: the
  estimate errs high, the safe side for a ceiling.

  Args:
    num_correct: int[P] correct samples per problem (over all samplers: every
      sample of an exact sampler is a draw from the model).
    num_samples: int, or int[P], the samples per problem behind num_correct.
    k: int >= 1, or int[K].

  Returns:
    float64[P] (or [P, K] for an array k).
  """
  c, n = _counts(num_correct, num_samples)
  ks, scalar = _k_values(k)
  ks = np.atleast_1d(ks)
  p_hat = c / n
  plug_in = np.minimum(1.0, p_hat[:, None] * ks[None, :])
  expected = np.empty_like(plug_in)
  for size in np.unique(n):
    rows = n == size
    for j, kk in enumerate(ks):
      expected[rows, j] = _expected_plug_in(p_hat[rows], int(size), float(kk))
  corrected = np.maximum(plug_in, 2.0 * plug_in - expected)  # >= plug-in also after rounding.
  return corrected[:, 0] if scalar else corrected


class UnionBoundInterval(NamedTuple):
  """The union bound mean_i min(1, k p_i) estimated from counts, with an interval.

  Attributes:
    estimate: the plug-in mean_i min(1, k c_i / n_i) (biased low).
    corrected: the bias-corrected estimate (`union_bound_corrected_per_problem`
      averaged, at most 1).
    low: lower end: the bootstrap's lower quantile of the plug-in.
    high: upper end: the bootstrap's upper quantile of the corrected
      estimate, at most 1. An exact sampler's pass@k above it contradicts
      exactness (beyond the interval's error rate).
  """

  estimate: float | np.ndarray
  corrected: float | np.ndarray
  low: float | np.ndarray
  high: float | np.ndarray


def bootstrap_union_bound(
    num_correct, num_samples, k, *, seed: int, num_resamples: int = 2000, level: float = 0.95
) -> UnionBoundInterval:
  """The union bound mean_i min(1, k p_i) from counts of exact samples, with an interval.

  p_i is estimated by c_i / n_i from ALL samples of a problem (every sampler
  that keeps each sample exact draws from the model, so pooling is unbiased
  for p_i and has less variance than the i.i.d. samples alone). The plug-in
  is biased low, so the interval brackets the two estimators: from the
  plug-in's lower quantile to the bias-corrected estimate's upper quantile,
  both from one percentile bootstrap over problems (`bootstrap_ci`, shared
  resamples). It covers the true mean_i min(1, k p_i) at about the nominal
  rate or more (tests/metrics/test_passk.py simulates it).

  Args:
    num_correct: int[P] correct samples per problem.
    num_samples: int, or int[P], samples per problem.
    k: int >= 1, or int[K].
    seed: bootstrap seed (int >= 0).
    num_resamples: bootstrap resamples B >= 1.
    level: confidence level in (0, 1).

  Returns:
    UnionBoundInterval of floats (or float64[K] arrays for an array k).
  """
  c, n = _counts(num_correct, num_samples)
  ks, scalar = _k_values(k)
  ks = np.atleast_1d(ks)
  plug_in = np.minimum(1.0, (c / n)[:, None] * ks[None, :])
  corrected = union_bound_corrected_per_problem(c, n, ks.astype(np.int64))
  ci = bootstrap.bootstrap_ci(
      np.concatenate([plug_in, corrected], axis=1), seed=seed, num_resamples=num_resamples, level=level
  )
  num_k = ks.size
  # The true bound is at most 1: clipping the corrected ends there only helps.
  out = (
      ci.mean[:num_k],
      np.minimum(1.0, ci.mean[num_k:]),
      np.minimum(ci.low[:num_k], ci.mean[:num_k]),
      np.minimum(1.0, np.maximum(ci.high[num_k:], ci.mean[:num_k])),
  )
  if scalar:
    return UnionBoundInterval(*(float(x[0]) for x in out))
  return UnionBoundInterval(*out)


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
