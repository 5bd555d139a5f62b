"""Unbiased maj@k, weighted@k and bon@k for independent and coupled (RQMC) samplers.

The accuracy of a test-time-scaling strategy at k samples (`strategies`) is
the probability that the answer it picks from k fresh samples (one group of
k for a coupled sampler) is correct. Ties are broken uniformly at random
among the tied candidates, the keyed rule of `strategies` with a random tie
seed; a group's "credit" is its exact success probability given its samples:
the fraction of the tied candidates that are correct (1 or 0 without a
tie). Using it instead of one keyed draw removes the tie-break's randomness
(Rao-Blackwell) and needs no seed.

The estimators, per problem, from answers of R independently randomized
groups of n samples (as for `passk.pass_at_k`):
  * i.i.d. ("independent"): the mean credit over k-subsets of the R * n
    pooled samples. Every k-subset of i.i.d. samples is k i.i.d. samples,
    so the mean over all of them (a U-statistic) is unbiased.
      - majority, weighted: all C(R n, k) subsets when there are at most
        `num_subsets` of them (exact); otherwise `num_subsets` k-subsets
        drawn uniformly at random (each the k smallest of R n uniform
        keys, from np.random.default_rng(seed)), the same subsets for every
        problem. Each drawn subset is a uniform k-subset, so the mean over
        them has the all-subsets mean as its expectation: still unbiased,
        with an added variance of at most 1 / (4 num_subsets) per problem,
        uncorrelated between problems (the pooled samples are
        exchangeable), so `bootstrap_ci` over problems covers it.
      - best-of-n: exact for any size by ranks: order the pooled samples
        answered first, then by score, highest first; the j-th of N is the
        best of C(N - j, k - 1) of the C(N, k) subsets. Samples of equal
        rank key share their ranks' weight equally (the uniform tie-break).
  * coupled, k = n: replication, the mean credit of the R whole groups.
  * coupled, k < n: the mean credit over the R groups and their valid
    sub-groups of size k (`subgroups.valid_subgroups`), each distributed
    like a fresh group of k; raises for a k with none, like `pass_at_k`.
The strategies are functions of a group's samples, so the arguments of
`passk` carry over unchanged: only the indicator "some sample correct" is
replaced by the strategy's credit.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from qmotto.metrics import _validate
from qmotto.metrics import passk
from qmotto.metrics import strategies
from qmotto.metrics import subgroups as subgroups_lib

# Pooled i.i.d. majority and weighted votes: all k-subsets when there are at
# most this many, otherwise this many uniformly random ones (the default of
# `num_subsets`).
NUM_SUBSETS = 4096
# Elements of a gathered [P, R, S, k] array handled at once.
_GATHER_CHUNK = 1 << 21


def _vote_credit(ids: np.ndarray, correct: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
  """float64[G]: fraction of correct answers among each group's leading answers (0 if none)."""
  tally = strategies._tally_answers(ids, weights)
  right = np.take_along_axis(correct, tally.order, axis=1)
  num_top = tally.top.sum(axis=1)
  return (tally.top & right).sum(axis=1) / np.maximum(num_top, 1)


def _best_credit(ids: np.ndarray, correct: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """float64[G]: fraction of correct samples among each group's best-scored ones."""
  chosen = strategies._best_scored(ids, scores)
  return (chosen & correct).sum(axis=1) / chosen.sum(axis=1)


def _credit(name: str, ids, correct, values) -> np.ndarray:
  if name == "best_of_n":
    return _best_credit(ids, correct, values)
  return _vote_credit(ids, correct, values)


def _check_consistent(answer_ids: np.ndarray, correct: np.ndarray) -> None:
  """Raises unless every answer id has one correctness per problem and -1 is never correct."""
  num_p = answer_ids.shape[0]
  ids = answer_ids.reshape(num_p, -1)
  right = correct.reshape(num_p, -1)
  unanswered_right = (ids < 0) & right
  if np.any(unanswered_right):
    p = int(np.flatnonzero(unanswered_right.any(axis=1))[0])
    raise ValueError(
        "correct must be False where answer_ids is -1 (a sample without an answer cannot be right); "
        f"problem {p} has one marked correct."
    )
  order = np.lexsort((right, ids), axis=1)
  ids = np.take_along_axis(ids, order, axis=1)
  right = np.take_along_axis(right, order, axis=1)
  split = (ids[:, 1:] == ids[:, :-1]) & (right[:, 1:] != right[:, :-1])
  if np.any(split):
    p, j = (int(x[0]) for x in np.nonzero(split))
    raise ValueError(
        "correct must be the correctness of each sample's answer: samples with the same answer id "
        f"must agree, but in problem {p} answer id {ids[p, j]} is both correct and incorrect."
    )


def _inputs(name: str, answer_ids, correct, scores):
  """(strategy, ids int64[P, R, n], correct bool[P, R, n], values float64 or None), checked."""
  strategy = strategies.get_strategy(name)
  correct = _validate.correctness_array("correct", correct, ndim=3)
  if answer_ids is None:
    raise ValueError(f"answer_ids is required for strategy {name!r} (int[P, R, n], -1 = no answer).")
  ids = strategies._answer_id_array("answer_ids", answer_ids, ndim=3)
  if ids.shape != correct.shape:
    raise ValueError(
        f"answer_ids {ids.shape} and correct {correct.shape} must have the same shape [P, R, n]."
    )
  _check_consistent(ids, correct)
  values = None
  if strategy.scores is None:
    if scores is not None:
      raise ValueError(
          f"scores is not used by strategy {name!r}; only 'weighted' (weights >= 0) and "
          "'best_of_n' (scores) read it."
      )
  elif scores is None:
    raise ValueError(f"scores is required for strategy {name!r}: {strategy.scores}, float[P, R, n].")
  else:
    values = strategies._sample_values(
        "scores", scores, ids.shape, nonnegative=strategy.scores == "weights"
    )
  return strategy, ids, correct, values


def _check_k(strategy, structure, k, num_r: int, n: int) -> int:
  """k as an int, if the strategy's accuracy at k can be estimated from these groups."""
  k = _validate.int_argument("k", k, minimum=1)
  if structure.independent:
    if k > num_r * n:
      raise ValueError(
          f"k={k} exceeds the {num_r * n} pooled i.i.d. samples per problem (R={num_r} groups x "
          f"n={n}); {strategy.label} needs at least k samples."
      )
    return k
  try:
    return structure.check_size(n, k, "k")
  except ValueError as error:
    raise ValueError(f"{strategy.label}: {error}") from error


def _mean_credit(name, arrays, chunks, num_rows: int) -> np.ndarray:
  """float64[P]: mean credit over the R groups of arrays [P, R, n] and the subset rows of chunks."""
  num_p, num_r, _ = arrays[0].shape
  total = np.zeros(num_p, dtype=np.float64)
  for chunk in chunks:
    size = chunk.shape[1]
    gathered = [None if a is None else a[:, :, chunk].reshape(-1, size) for a in arrays]
    total += _credit(name, *gathered).reshape(num_p, -1).sum(axis=1)
  return total / (num_r * num_rows)


def _rows_per_chunk(num_elements_per_row: int) -> int:
  return max(1, _GATHER_CHUNK // max(1, num_elements_per_row))


def _pooled_subsets(num_pooled: int, k: int, num_subsets: int, seed: int, rows: int):
  """(chunks of k-subsets of range(num_pooled), their number): all, or num_subsets random ones."""
  if math.comb(num_pooled, k) <= num_subsets:
    every = np.array(list(itertools.combinations(range(num_pooled), k)), dtype=np.int64)
    every = every.reshape(-1, k)
    return (every[s : s + rows] for s in range(0, every.shape[0], rows)), every.shape[0]
  rows = max(1, min(rows, _GATHER_CHUNK // num_pooled))

  def draws():
    rng = np.random.default_rng(seed)
    for start in range(0, num_subsets, rows):
      keys = rng.random((min(rows, num_subsets - start), num_pooled))
      yield np.argpartition(keys, k - 1, axis=1)[:, :k]  # the k smallest keys: a uniform k-subset.

  return draws(), num_subsets


def _pooled_best_of_n(ids, correct, scores, k: int) -> np.ndarray:
  """float64[P]: bon@k averaged over all k-subsets of each problem's pooled samples, by ranks."""
  num_p = ids.shape[0]
  ids, correct, scores = (a.reshape(num_p, -1) for a in (ids, correct, scores))
  num_pooled = ids.shape[1]
  unanswered = ids < 0
  order = np.lexsort((-scores, unanswered), axis=1)  # answered first, then highest score.
  unanswered = np.take_along_axis(unanswered, order, axis=1)
  scores = np.take_along_axis(scores, order, axis=1)
  right = np.take_along_axis(correct, order, axis=1).astype(np.float64)
  # weight[j] = C(N - 1 - j, k - 1) / C(N, k): the share of k-subsets whose best is rank j (0-based).
  j = np.arange(num_pooled - 1)
  ratios = np.maximum(num_pooled - j - k, 0) / (num_pooled - 1 - j)  # weight[j + 1] / weight[j].
  weight = (k / num_pooled) * np.concatenate([[1.0], np.cumprod(ratios)])
  weight /= weight.sum()  # the shares sum to 1 exactly in theory; remove the product's rounding.
  # Samples of equal (answered, score) form a block; each block's weight is shared equally.
  new_block = np.concatenate(
      [
          np.ones((num_p, 1), dtype=bool),
          (scores[:, 1:] != scores[:, :-1]) | (unanswered[:, 1:] != unanswered[:, :-1]),
      ],
      axis=1,
  )
  block = (np.cumsum(new_block, axis=1) - 1) + num_pooled * np.arange(num_p)[:, None]
  size = num_p * num_pooled
  block_weight = np.bincount(block.ravel(), weights=np.broadcast_to(weight, block.shape).ravel(), minlength=size)
  block_right = np.bincount(block.ravel(), weights=right.ravel(), minlength=size)
  block_count = np.bincount(block.ravel(), minlength=size)
  share = block_right / np.maximum(block_count, 1) * block_weight
  # A sum of shares may still round past [0, 1] by an ulp (callers check probabilities).
  return np.clip(share.reshape(num_p, num_pooled).sum(axis=1), 0.0, 1.0)


def _estimate(name, ids, correct, values, structure, k, num_subsets, seed) -> np.ndarray:
  num_p, num_r, n = ids.shape
  if structure.independent:
    if name == "best_of_n":
      return _pooled_best_of_n(ids, correct, values, k)
    pooled = [None if a is None else a.reshape(num_p, 1, -1) for a in (ids, correct, values)]
    rows = _rows_per_chunk(num_p * k)
    chunks, num_rows = _pooled_subsets(num_r * n, k, num_subsets, seed, rows)
    return _mean_credit(name, pooled, chunks, num_rows)
  rows = structure.subgroups(n, k)
  step = _rows_per_chunk(num_p * num_r * k)
  chunks = (rows[s : s + step] for s in range(0, rows.shape[0], step))
  return _mean_credit(name, (ids, correct, values), chunks, rows.shape[0])


def strategy_at_k(
    strategy: str,
    *,
    correct,
    sampler,
    k: int,
    answer_ids=None,
    scores=None,
    num_subsets: int = NUM_SUBSETS,
    seed: int = 0,
) -> np.ndarray:
  """Unbiased accuracy at k samples of a test-time-scaling strategy, per problem.

  The estimator follows the sampler (module docstring): pooled k-subsets for
  i.i.d. samples, replication (k = n) or valid sub-groups (k < n) for a
  coupled sampler. Ties are broken uniformly at random in expectation (a
  tied group gets the fraction of its tied candidates that are correct).
  "pass" is `passk.pass_at_k`.

  The R groups of a problem must be independently randomized, and slot i of
  a group must hold point i of the sampler's n-point set (as for `pass_at_k`).

  Args:
    strategy: one of STRATEGIES ("pass", "majority", "weighted", "best_of_n").
    correct: bool[P, R, n]: problems x independent groups x group size; the
      correctness of each sample's answer (samples with one answer id agree;
      a sample without an answer, id -1, is never correct).
    sampler: the `qmotto.Sampler` that drew the groups (anything with a
      `group_structure`), or its structure, one of `GROUP_STRUCTURES`.
    k: int >= 1: <= R * n for i.i.d., a valid sub-group size for a coupled
      sampler (`allowed_subgroup_sizes`).
    answer_ids: int[P, R, n] answer ids (`strategies.encode_answers`; -1 =
      no answer); required but for "pass".
    scores: float[P, R, n]: for "weighted" the weights (>= 0, e.g.
      np.exp(mean_token_logprob(...))), for "best_of_n" the finite scores
      (e.g. mean_token_logprob(...)); None for the others.
    num_subsets: pooled i.i.d. majority and weighted votes average all
      C(R n, k) k-subsets when there are at most this many, otherwise this
      many random ones (int >= 1).
    seed: int >= 0 seeding those random subsets (the same for all problems).

  Returns:
    float64[P]; average over problems, and `bootstrap_ci` for an interval.

  Raises:
    ValueError: on an unknown strategy (listing STRATEGIES), malformed or
      inconsistent inputs, a missing or unused scores, scores of the wrong
      shape or not finite (or negative weights), or a k that the sampler's
      groups cannot estimate.
  """
  if strategies.get_strategy(strategy).name == "pass":
    if scores is not None:
      raise ValueError("scores is not used by strategy 'pass'.")
    if answer_ids is not None:
      correct_shape = np.shape(correct)
      ids = strategies._answer_id_array("answer_ids", answer_ids, ndim=3)
      if ids.shape != correct_shape:
        raise ValueError(f"answer_ids {ids.shape} and correct {correct_shape} must have the same shape.")
    return passk.pass_at_k(correct, sampler=sampler, k=k)
  structure = subgroups_lib.GroupStructure.of(sampler)
  strategy_info, ids, correct, values = _inputs(strategy, answer_ids, correct, scores)
  num_subsets = _validate.int_argument("num_subsets", num_subsets, minimum=1)
  seed = _validate.int_argument("seed", seed, minimum=0)
  _, num_r, n = ids.shape
  n = structure.check_group_size(n, "group size correct.shape[2]")
  k = _check_k(strategy_info, structure, k, num_r, n)
  return _estimate(strategy, ids, correct, values, structure, k, num_subsets, seed)


def majority_at_k(
    answer_ids, correct, *, sampler, k: int, num_subsets: int = NUM_SUBSETS, seed: int = 0
) -> np.ndarray:
  """Unbiased maj@k per problem: the plurality answer of k samples is correct.

  `strategy_at_k("majority", ...)`; see there for the arguments.

  Returns:
    float64[P].
  """
  return strategy_at_k(
      "majority", answer_ids=answer_ids, correct=correct, sampler=sampler, k=k,
      num_subsets=num_subsets, seed=seed,
  )


def weighted_vote_at_k(
    answer_ids, correct, weights, *, sampler, k: int, num_subsets: int = NUM_SUBSETS, seed: int = 0
) -> np.ndarray:
  """Unbiased weighted@k per problem: the answer of largest total weight among k samples is correct.

  `strategy_at_k("weighted", ..., scores=weights)`; see there for the arguments.

  Returns:
    float64[P].
  """
  return strategy_at_k(
      "weighted", answer_ids=answer_ids, correct=correct, scores=weights, sampler=sampler, k=k,
      num_subsets=num_subsets, seed=seed,
  )


def best_of_n_at_k(answer_ids, correct, scores, *, sampler, k: int) -> np.ndarray:
  """Unbiased bon@k per problem: the best-scored of k samples is correct.

  `strategy_at_k("best_of_n", ..., scores=scores)`; exact for i.i.d.
  samples at any size (ranks, no subsets drawn).

  Returns:
    float64[P].
  """
  return strategy_at_k(
      "best_of_n", answer_ids=answer_ids, correct=correct, scores=scores, sampler=sampler, k=k
  )


def majority_at_infinity(answer_ids, correct) -> np.ndarray:
  """Plug-in maj@infinity per problem: the plurality answer of all pooled samples is correct.

  maj@k tends to 1 when the model's most likely answer (among answers, -1
  excluded) is correct, to 0 when it is wrong. This plug-in takes the
  plurality of a problem's R * n samples (any exact sampler: every sample is
  a draw from the model), a tie giving the fraction of tied answers that are
  correct. It is consistent, not unbiased: with few samples a close
  runner-up often leads.

  Args:
    answer_ids: int[P, R, n] answer ids (-1 = no answer).
    correct: bool[P, R, n], the correctness of each sample's answer.

  Returns:
    float64[P].
  """
  _, ids, correct, _ = _inputs("majority", answer_ids, correct, None)
  num_p = ids.shape[0]
  return _vote_credit(ids.reshape(num_p, -1), correct.reshape(num_p, -1), None)
