"""Sampling until verified: samples, solve rate and tokens of the first accepted sample (NumPy only).

The strategy ("first_success"). For one problem, draw samples in rounds of
b; after each round a verifier looks at the samples drawn so far; stop at
the end of the first round that holds an accepted sample, or at the budget
N = m b (m rounds) if none is accepted. The answer is the first accepted
sample in draw order (slot order), and the problem is solved when that
sample is correct. Per problem the strategy has three outcomes:
  * samples: the samples drawn, b * (rounds until the first accept), N if
    none is accepted within N;
  * solved: 1 when the first accepted sample exists within N and is
    correct, else 0;
  * tokens: the tokens spent, the sum of the generated lengths of the
    drawn slots.
`first_success_in_order` computes them for given groups in slot order (one
realization per group); `first_success` estimates their expectations
without bias, the estimator chosen for the sampler:

  * i.i.d. ("independent"): the exact mean over all orderings of N samples
    drawn without replacement from the n >= N pooled samples of a problem
    (`iid_first_success`). Every ordered N-tuple of distinct i.i.d. samples
    is N i.i.d. draws in order, so this average over all of them (a
    U-statistic) is unbiased, like Chen's pass@k. With A accepted samples
    among the n, of which A_c correct, S_a and S_u the summed lengths of the
    accepted and the other samples, and the hypergeometric
        H(n, A, j) = C(n - A, j) / C(n, j) = prod_{t<j} (n - A - t) / (n - t),
    the probability that j samples drawn without replacement hold no
    accepted one:
      - E[samples] = b * sum_{r=0}^{m-1} H(n, A, r b): round r + 1 is drawn
        exactly when the first r b samples hold no accept, and
        samples = b * sum_{r=0}^{m-1} 1{no accept in the first r b};
      - P(solved) = (1 - H(n, A, N)) * A_c / A (0 when A = 0): some accepted
        sample lies among the first N with probability 1 - H(n, A, N), and
        which accepted sample comes first is independent of the positions
        the accepted samples take (exchange any two of them), so it is each
        of the A with probability 1 / A;
      - E[tokens] = b * sum_{r=0}^{m-1} (S_u H(n - 1, A, r b)
                                         + S_a H(n - 1, A - 1, r b)) / n:
        position j of round r (r b <= j < (r + 1) b) is drawn when the first
        r b positions hold no accept. Sample i sits at position j with
        probability 1 / n, and then the first r b positions are r b draws
        from the other n - 1 samples, of which A (i not accepted) or A - 1
        (i accepted) are accepted. Summing L_i over i and the b positions of
        each round gives the formula. With lengths independent of
        acceptance it is E[L] E[samples] (Wald), which the tests use.
  * coupled, extensible (`is_extensible`): replication, the mean over the R
    independently randomized groups of N of each group's realization in
    slot order. For an extensible sampler slot i of a group does not depend
    on the group size, so the first r b slots of one group of N are exactly
    the samples that r rounds of b would have drawn with the same key, and
    the stopping decision after round r reads only those slots: the one-shot
    group of N and the rounds give the same realization, so each group is
    one unbiased draw of (samples, solved, tokens).
  * coupled, not extensible (a lattice in natural order, stratified): no
    estimator, it raises. Its first r b slots of a group of N are exact
    draws but not the group of r b points the rounds would draw.

The verifier. `imperfect_verifier` accepts every correct sample and a wrong
one with probability q (its false-positive rate), deterministically per
(seed, problem index, slot) and with the same uniform for every q, so the
accepted set grows with q and every sampler meets the same verifier
decisions slot by slot (common random numbers for the comparison).
`bootstrap_cost_saved` gives 1 - E[samples] / E_iid[samples] (or tokens)
with a bootstrap interval over problems.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from qmotto.metrics import _validate
from qmotto.metrics import bootstrap as bootstrap_lib
from qmotto.metrics import saved as saved_lib
from qmotto.metrics import strategies
from qmotto.metrics import subgroups as subgroups_lib

# Group structures whose samplers are extensible when the sampler object
# does not say (`is_extensible`): i.i.d., and "dyadic", where a group of
# 2**L is the first 2**L points of one sequence (Sobol, the lattice in
# radical-inverse order).
EXTENSIBLE_STRUCTURES = ("independent", "dyadic")
# Slots per problem in `imperfect_verifier` (the key is index * 2**32 + slot).
_MAX_SLOTS = 1 << 32
_MAX_PROBLEM_INDEX = (1 << 31) - 1


class FirstSuccess(NamedTuple):
  """Outcomes of sampling until verified, per problem (expectations) or per group (one realization).

  Attributes:
    samples: float64[...], samples drawn: b times the rounds until the first
      accepted sample, N when none is accepted.
    solved: float64[...], whether (probability that) the first accepted
      sample exists within N and is correct.
    tokens: float64[...], tokens spent: the summed lengths of the drawn
      slots; None when no lengths were given.
  """

  samples: np.ndarray
  solved: np.ndarray
  tokens: np.ndarray | None


def is_extensible(sampler) -> bool:
  """Whether a group of the sampler can be drawn in rounds: slot i does not depend on the group size.

  A `qmotto.Sampler` says so itself (`Sampler.extensible`); for a group
  structure name, or an object without that attribute, the structures in
  EXTENSIBLE_STRUCTURES count as extensible.

  Args:
    sampler: a `qmotto.Sampler` (anything with a `group_structure`) or a
      structure name from GROUP_STRUCTURES.

  Raises:
    ValueError: for anything else (see `GroupStructure.of`).
  """
  structure = subgroups_lib.GroupStructure.of(sampler)
  flag = None if isinstance(sampler, str) else getattr(sampler, "extensible", None)
  if isinstance(flag, (bool, np.bool_)):
    return bool(flag)
  return structure.name in EXTENSIBLE_STRUCTURES


def _check_rounds(budget, round_size, largest: int, where: str, name: str = "budget") -> tuple[int, int]:
  """(budget N, round size b) as ints: 1 <= b <= N <= largest and b | N; `name` is N's in messages."""
  round_size = _validate.int_argument("round_size", round_size, minimum=1)
  budget = _validate.int_argument(name, budget, minimum=1)
  if budget > largest:
    raise ValueError(f"{name}={budget} exceeds {where} ({largest}); the budget N is at most that.")
  if round_size > budget:
    raise ValueError(
        f"round_size={round_size} is larger than the budget {name}={budget}: a budget holds at least one "
        "round."
    )
  if budget % round_size:
    raise ValueError(
        f"{name}={budget} is not a multiple of round_size={round_size}: sampling stops after whole rounds, "
        f"so N must be m * b (e.g. {budget - budget % round_size} or {budget - budget % round_size + round_size})."
    )
  return budget, round_size


def _flags(name: str, value, ndim: int | None = None) -> np.ndarray:
  array = np.asarray(value)
  if array.dtype != bool:
    if not np.issubdtype(array.dtype, np.integer) or np.any((array != 0) & (array != 1)):
      raise ValueError(f"{name} must be a bool array (one flag per sample), got dtype {array.dtype}.")
    array = array.astype(bool)
  if ndim is not None and array.ndim != ndim:
    raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}.")
  if array.ndim == 0 or 0 in array.shape:
    raise ValueError(f"{name} must have a sample axis and no empty axis, got shape {array.shape}.")
  return array


def _inputs(accepted, correct, lengths, ndim: int | None):
  """(accepted, correct, lengths or None) checked: bool, bool, int64 of one shape."""
  accepted = _flags("accepted", accepted, ndim)
  correct = _flags("correct", correct, ndim)
  if correct.shape != accepted.shape:
    raise ValueError(f"accepted {accepted.shape} and correct {correct.shape} must have the same shape.")
  if lengths is not None:
    lengths = _validate.integer_array("lengths", lengths)
    if lengths.shape != accepted.shape:
      raise ValueError(
          f"lengths must have the shape of accepted {accepted.shape} (one generated length per sample), "
          f"got {lengths.shape}."
      )
  return accepted, correct, lengths


def first_success_in_order(accepted, correct, *, round_size: int, lengths=None) -> FirstSuccess:
  """One realization per group: sampling until verified through the slots in order.

  Rounds take slots [0, b), [b, 2 b), ...; the run stops after the round
  holding the first accepted slot, or after all N slots.

  Args:
    accepted: bool[..., N], the verifier's decision on each slot, in slot
      (draw) order; N must be a multiple of round_size.
    correct: bool[..., N], whether each slot's sample is correct.
    round_size: b, samples per round (int >= 1).
    lengths: optional int[..., N] >= 0, each slot's generated length.

  Returns:
    FirstSuccess of float64[...]: samples in {b, 2 b, ..., N}, solved in
    {0, 1}, tokens (None without lengths).
  """
  accepted, correct, lengths = _inputs(accepted, correct, lengths, None)
  n = accepted.shape[-1]
  _, b = _check_rounds(n, round_size, n, "the slots per group", "the group size accepted.shape[-1]")
  hit = accepted.any(axis=-1)
  first = np.argmax(accepted, axis=-1)
  samples = np.where(hit, (first // b + 1) * b, n)
  solved = hit & np.take_along_axis(correct, first[..., None], axis=-1)[..., 0]
  tokens = None
  if lengths is not None:
    spent = np.cumsum(lengths, axis=-1)
    tokens = np.take_along_axis(spent, (samples - 1)[..., None], axis=-1)[..., 0].astype(np.float64)
  return FirstSuccess(samples.astype(np.float64), solved.astype(np.float64), tokens)


def _no_accept(num: int, accepted: np.ndarray, draws: int, pool: int) -> np.ndarray:
  """float64[P, draws + 1]: column j is C(pool - A, j) / C(pool, j), A = accepted[p].

  The probability that j draws without replacement from `pool` samples, A of
  them accepted, hold no accepted one (1 at j = 0, 0 once j > pool - A).
  """
  t = np.arange(draws, dtype=np.float64)
  ratios = np.maximum(pool - accepted[:, None] - t, 0.0) / (pool - t)
  return np.concatenate([np.ones((num, 1)), np.cumprod(ratios, axis=1)], axis=1)


def iid_first_success(accepted, correct, *, budget: int, round_size: int, lengths=None) -> FirstSuccess:
  """Exact expectations over all orderings of N of the n pooled i.i.d. samples of each problem.

  The module docstring derives the formulas; each is the average of
  `first_success_in_order` over every ordered choice of N distinct samples
  of the n (unbiased for i.i.d. samples, and for i.i.d. samples only).

  Args:
    accepted: bool[P, n], each pooled sample's verifier decision.
    correct: bool[P, n], each sample's correctness.
    budget: N, 1 <= N <= n, a multiple of round_size.
    round_size: b, samples per round.
    lengths: optional int[P, n] generated lengths.

  Returns:
    FirstSuccess of float64[P].
  """
  accepted, correct, lengths = _inputs(accepted, correct, lengths, 2)
  num, n = accepted.shape
  budget, b = _check_rounds(budget, round_size, n, "the pooled samples per problem")
  starts = np.arange(0, budget, b)  # r b for r = 0 .. m - 1.
  count = accepted.sum(axis=1).astype(np.float64)
  right = (accepted & correct).sum(axis=1).astype(np.float64)
  none = _no_accept(num, count, budget, n)  # [P, N + 1]
  samples = b * none[:, starts].sum(axis=1)
  solved = (1.0 - none[:, budget]) * right / np.maximum(count, 1.0)
  tokens = None
  if lengths is not None:
    lengths = lengths.astype(np.float64)
    spent_accepted = (lengths * accepted).sum(axis=1)
    spent_other = (lengths * ~accepted).sum(axis=1)
    draws = int(starts[-1])  # at most N - b <= n - 1 draws from the other n - 1 samples.
    other = _no_accept(num, count, draws, n - 1)  # sample i not accepted: A of the n - 1 others accepted.
    mine = _no_accept(num, np.maximum(count - 1.0, 0.0), draws, n - 1)  # i accepted: A - 1 of n - 1.
    per_position = (spent_other[:, None] * other[:, starts] + spent_accepted[:, None] * mine[:, starts]) / n
    tokens = b * per_position.sum(axis=1)
  return FirstSuccess(samples, solved, tokens)


def first_success(accepted, correct, *, sampler, round_size: int, budget: int | None = None,
                  lengths=None) -> FirstSuccess:
  """Unbiased expected samples, solve rate and tokens of sampling until verified, per problem.

  The estimator follows the sampler (module docstring): all orderings of
  the R * n pooled samples for i.i.d.; for an extensible coupled sampler the
  mean over the R groups of the realization through the first N slots in
  slot order. A coupled sampler that is not extensible raises.

  The R groups of a problem must be independently randomized, and slot i of
  a group must hold point i of the sampler's set (the order
  `qmotto.generate` returns), as for `pass_at_k`.

  Args:
    accepted: bool[P, R, n], the verifier's decision on each sample (e.g.
      `imperfect_verifier`).
    correct: bool[P, R, n], each sample's correctness.
    sampler: the `qmotto.Sampler` that drew the groups (anything with a
      `group_structure`), or its structure, one of GROUP_STRUCTURES.
    round_size: b, samples per round (int >= 1).
    budget: N, a multiple of b; at most n for a coupled sampler (the first N
      slots are used), at most R * n for i.i.d. Default: n.
    lengths: optional int[P, R, n] generated lengths (for the tokens).

  Returns:
    FirstSuccess of float64[P]; average over problems, and `bootstrap_ci`
    for intervals.

  Raises:
    ValueError: on malformed inputs, a budget that is not a multiple of the
      round size or exceeds the samples, or a coupled sampler that is not
      extensible.
  """
  structure = subgroups_lib.GroupStructure.of(sampler)
  accepted, correct, lengths = _inputs(accepted, correct, lengths, 3)
  num, num_r, n = accepted.shape
  n = structure.check_group_size(n, "group size accepted.shape[2]")
  budget = n if budget is None else budget
  if structure.independent:
    _check_rounds(budget, round_size, num_r * n, f"the R * n = {num_r} * {n} pooled i.i.d. samples per problem")
    flat = [None if a is None else a.reshape(num, num_r * n) for a in (accepted, correct, lengths)]
    return iid_first_success(flat[0], flat[1], budget=budget, round_size=round_size, lengths=flat[2])
  if not is_extensible(sampler):
    raise ValueError(
        f"first_success: {structure.label} is not extensible: its first slots of a group of {n} are not the "
        "group that drawing in rounds would give (slot i depends on the group size), so its groups cannot "
        f"be read as rounds. Extensible samplers: iid, and the coupled samplers whose Sampler.extensible is "
        f"True (Sobol in either mode, the lattice in radical-inverse order 'lattice_extensible'); by "
        f"structure: {EXTENSIBLE_STRUCTURES}."
    )
  budget, b = _check_rounds(budget, round_size, n, "the group size (a coupled group's slots)")
  cut = [None if a is None else a[..., :budget] for a in (accepted, correct, lengths)]
  one = first_success_in_order(cut[0], cut[1], round_size=b, lengths=cut[2])
  return FirstSuccess(*(None if v is None else v.mean(axis=1) for v in one))


def imperfect_verifier(correct, *, false_positive_rate: float, seed: int, problem_indices=None,
                       answered=None) -> np.ndarray:
  """A verifier's decisions: every correct sample accepted, a wrong one with probability q.

  Slot j of problem p (slots numbered over the trailing axes of `correct` in
  C order, so with [P, R, N] slot r N + j) gets the uniform
  u = (SplitMix64 output >> 11) / 2**53 of the id
  problem_indices[p] * 2**32 + j, keyed by `seed` (`strategies.tie_priorities`
  gives the 64-bit output), and a wrong sample is accepted when u < q. So
  the decisions are deterministic per (seed, problem index, slot), distinct
  (problem, slot) pairs get independent-looking uniforms, a larger q
  accepts a superset, and samplers whose groups share slot numbers meet the
  same decisions (a paired comparison).

  Args:
    correct: bool[P, ...], each sample's correctness.
    false_positive_rate: q in [0, 1], the probability of accepting a wrong sample.
    seed: int >= 0.
    problem_indices: int[P] in [0, 2**31), the problems' own indices (e.g.
      `Problem.index`), so a problem meets the same decisions in any run;
      default 0 .. P - 1.
    answered: optional bool of correct's shape; a sample without an answer
      (False) is never accepted.

  Returns:
    bool of correct's shape.
  """
  correct = _flags("correct", correct)
  q = _validate.probability_array("false_positive_rate", false_positive_rate)
  if q.ndim:
    raise ValueError(f"false_positive_rate must be one number in [0, 1], got shape {q.shape}.")
  seed = _validate.int_argument("seed", seed, minimum=0)
  num = correct.shape[0]
  slots = int(np.prod(correct.shape[1:], dtype=np.int64))
  if slots > _MAX_SLOTS:
    raise ValueError(f"correct has {slots} samples per problem, more than the verifier's {_MAX_SLOTS}.")
  if problem_indices is None:
    indices = np.arange(num, dtype=np.int64)
  else:
    indices = _validate.integer_array("problem_indices", problem_indices)
    if indices.shape != (num,):
      raise ValueError(f"problem_indices must be int[{num}] (one per problem of correct), got {indices.shape}.")
    if indices.size and indices.max() > _MAX_PROBLEM_INDEX:
      raise ValueError(f"problem_indices must be < 2**31, got a maximum of {indices.max()}.")
  ids = indices[:, None] * np.int64(_MAX_SLOTS) + np.arange(slots, dtype=np.int64)[None, :]
  words = strategies.tie_priorities(ids, tie_seed=seed)
  uniforms = (words >> np.uint64(11)).astype(np.float64) * 2.0**-53
  accepted = correct.reshape(num, slots) | (uniforms < float(q))
  if answered is not None:
    answered = _flags("answered", answered)
    if answered.shape != correct.shape:
      raise ValueError(f"answered must have the shape of correct {correct.shape}, got {answered.shape}.")
    accepted &= answered.reshape(num, slots) | correct.reshape(num, slots)
  return accepted.reshape(correct.shape)


def bootstrap_cost_saved(cost, iid_cost, *, seed: int, num_resamples: int = 1000,
                         level: float = 0.95) -> saved_lib.SavingsInterval:
  """1 - mean(cost) / mean(iid_cost), with a percentile-bootstrap interval over problems.

  For sampling until verified: the fraction of the i.i.d. samples (or
  tokens) a sampler saves, from their per-problem expectations on the same
  problems. Each resample draws P problems with replacement, the SAME ones
  for both (the samplers ran on the same problems, so their errors are
  correlated).

  Args:
    cost: float[P] >= 0, the sampler's per-problem expected samples (or tokens).
    iid_cost: float[P] >= 0, the i.i.d. values on the same problems.
    seed: int >= 0 for `np.random.default_rng`; required.
    num_resamples: bootstrap resamples B >= 1.
    level: confidence level in (0, 1).

  Returns:
    `SavingsInterval(estimate, low, high)`; NaN where the i.i.d. mean is 0.
  """
  seed = _validate.check_seed(seed)
  num_resamples = _validate.int_argument("num_resamples", num_resamples, minimum=1)
  level = _validate.check_level(level)
  values = [bootstrap_lib.finite_per_problem(name, v) for name, v in (("cost", cost), ("iid_cost", iid_cost))]
  if values[0].ndim != 1 or values[0].shape != values[1].shape:
    raise ValueError(
        f"cost {values[0].shape} and iid_cost {values[1].shape} must both be float[P], the same problems."
    )
  if np.any(values[0] < 0) or np.any(values[1] < 0):
    raise ValueError("cost and iid_cost must be >= 0 (expected samples or tokens).")
  pair = np.stack(values, axis=1)

  def saved(means):
    with np.errstate(divide="ignore", invalid="ignore"):
      return np.where(means[..., 1] > 0, 1.0 - means[..., 0] / means[..., 1], np.nan)

  estimate = float(saved(pair.mean(axis=0)))
  resampled = saved(bootstrap_lib.resampled_means(pair, seed=seed, num_resamples=num_resamples))
  if np.isnan(estimate) or np.any(np.isnan(resampled)):
    low = high = float("nan")
  else:
    low, high = np.quantile(resampled, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], method="inverted_cdf")
  return saved_lib.SavingsInterval(estimate, float(low), float(high))
