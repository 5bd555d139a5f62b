"""Test-time-scaling strategies: the answer a group of samples gives (NumPy only).

A strategy turns the k samples drawn for one problem into one answer:
  * "pass": an oracle verifier, right when some sample is (pass@k; its
    estimators are in `passk`);
  * "majority": the most frequent answer (`majority_vote`, maj@k);
  * "weighted": the answer with the largest total weight, e.g. each sample
    weighted by exp of its mean token log-probability (`weighted_vote`);
  * "best_of_n": the answer of the sample with the highest score, by default
    its mean token log-probability (`best_of_n`, `mean_token_logprob`; bon@k).
The functions here act on one group, batched over any leading axes
([..., n] -> [...]); the unbiased estimators of their accuracy at k samples,
for i.i.d. and coupled samplers, are in `tts` (`strategy_at_k`).

Answers are int ids per sample: equal answers share an id, -1 is "no answer"
(unparsable). `encode_answers` maps each problem's answers (strings, numbers)
to ids; the ids carry no meaning beyond equality. A -1 never wins unless
every sample of the group is -1: then the group gives no answer (-1), which
is never correct.

Ties, the keyed rule: with tie seed s, every id x gets a pseudo-random 64-bit
priority `tie_priorities(x, tie_seed=s)`; among the tied answers (votes) or
tied samples (best-of-n, keyed by slot index) the highest priority wins. The
priorities of distinct ids behave like independent uniform draws, so for a
random tie seed the winner is uniform among the tied candidates; the
estimators in `tts` compute exactly that expectation (each tied candidate
gets an equal share of the credit), so they need no tie seed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from qmotto.metrics import _validate

STRATEGIES = ("pass", "majority", "weighted", "best_of_n")
# The id of a sample without an answer (unparsable, missing).
NO_ANSWER = -1

# SplitMix64 (Steele, Lea and Flood 2014): the stream increment and the output mix.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


class Strategy(NamedTuple):
  """A test-time-scaling strategy, as `get_strategy` describes it.

  Attributes:
    name: one of STRATEGIES.
    label: its metric's name, e.g. "maj@k".
    scores: what it reads beside the answers: None, "weights" (one weight
      >= 0 per sample) or "scores" (one real score per sample).
    rule: one line on how it picks the answer.
  """

  name: str
  label: str
  scores: str | None
  rule: str


_STRATEGIES = {
    "pass": Strategy("pass", "pass@k", None, "right when some sample is right (an oracle verifier)"),
    "majority": Strategy("majority", "maj@k", None, "the most frequent answer"),
    "weighted": Strategy("weighted", "weighted@k", "weights", "the answer with the largest total weight"),
    "best_of_n": Strategy("best_of_n", "bon@k", "scores", "the answer of the highest-scored sample"),
}


def get_strategy(name) -> Strategy:
  """The strategy called `name`, one of STRATEGIES.

  Raises:
    ValueError: for any other name, listing the allowed ones.
  """
  if not isinstance(name, str) or name not in _STRATEGIES:
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}.")
  return _STRATEGIES[name]


def encode_answers(answers) -> np.ndarray:
  """Each problem's answers as int ids: equal answers share an id, None is -1.

  Ids are given per problem (axis 0), 0, 1, 2, ... in order of first
  appearance (C order over the problem's other axes); they carry no meaning
  beyond equality. Answers are equal when they compare equal and hash alike
  (so 1 and 1.0 share an id, "1" and 1 do not): normalize strings first.

  Args:
    answers: nested lists or an object array [P, ...] (at least a problem
      and a sample axis) of hashable scalar answers (str, int, ...), None
      where a sample has no parsable answer.

  Returns:
    int64 array of the same shape, ids >= 0 and -1 for None.

  Raises:
    ValueError: if answers is not rectangular with at least 2 axes, or an
      answer is a sequence or unhashable.
  """
  array = np.asarray(answers, dtype=object)
  if array.ndim < 2 or 0 in array.shape:
    raise ValueError(
        f"answers must be a rectangular nested list [P, ...] (problems x samples, at least 2 axes, "
        f"none empty), got shape {array.shape}."
    )
  ids = np.empty(array.shape, dtype=np.int64)
  rows = ids.reshape(array.shape[0], -1)  # a view: writing rows fills ids.
  for p, answers_p in enumerate(array.reshape(array.shape[0], -1)):
    seen = {}
    row = rows[p]
    for i, answer in enumerate(answers_p):
      if answer is None:
        row[i] = NO_ANSWER
        continue
      if isinstance(answer, (list, tuple, np.ndarray)):
        raise ValueError(
            f"answers must be rectangular and hold scalar answers, got a {type(answer).__name__} in "
            f"problem {p} (a ragged list, or answers that are sequences: join them into strings)."
        )
      try:
        row[i] = seen.setdefault(answer, len(seen))
      except TypeError as error:
        raise ValueError(
            f"answers must be hashable, got {type(answer).__name__} in problem {p}."
        ) from error
  return ids


def tie_priorities(ids, *, tie_seed: int) -> np.ndarray:
  """The keyed priority of each id: uint64, the same id always gets the same one.

  priority(x) = mix(key + (x + 1) * 0x9E3779B97F4A7C15 mod 2**64), the
  SplitMix64 output mix, with key = SeedSequence(tie_seed)'s first uint64
  word: the (x + 1)-th output of a SplitMix64 stream keyed by the seed.
  Distinct ids get (pseudo-)independent uniform 64-bit priorities.

  Args:
    ids: int array (any shape), answer ids or slot indices.
    tie_seed: int >= 0.

  Returns:
    uint64 array of ids' shape.
  """
  tie_seed = _validate.int_argument("tie_seed", tie_seed, minimum=0)
  values = np.asarray(ids)
  if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
    raise ValueError(f"ids must hold integers, got dtype {values.dtype}.")
  key = np.random.SeedSequence(tie_seed).generate_state(1, dtype=np.uint64)[0]
  with np.errstate(over="ignore"):
    x = np.atleast_1d(values).astype(np.int64).astype(np.uint64) + np.uint64(1)
    x = key + x * _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX_1
    x = (x ^ (x >> np.uint64(27))) * _MIX_2
    x = x ^ (x >> np.uint64(31))
  return x.reshape(values.shape)


def _answer_id_array(name: str, value, *, ndim: int | None = None) -> np.ndarray:
  """`value` as int64 answer ids (>= -1), no empty axis; raises naming `name` otherwise.

  Args:
    name: the argument's name, for messages.
    value: int array of answer ids (-1 = no answer).
    ndim: the required number of axes; None: at least 1.

  Returns:
    int64 array.
  """
  try:
    array = np.asarray(value)
  except ValueError as error:
    raise ValueError(f"{name} must be a rectangular int array of answer ids: {error}") from error
  if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
    raise ValueError(
        f"{name} must hold integer answer ids (>= 0, -1 = no answer; map answers to ids with "
        f"encode_answers), got dtype {array.dtype}."
    )
  if ndim is not None and array.ndim != ndim:
    raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}.")
  if array.ndim == 0 or 0 in array.shape:
    raise ValueError(f"{name} must have a sample axis and no empty axis, got shape {array.shape}.")
  if np.any(array < NO_ANSWER):
    raise ValueError(f"{name} must be >= -1 (-1 = no answer), got a minimum of {array.min()}.")
  return array.astype(np.int64)


def _sample_values(name: str, value, shape: tuple, *, nonnegative: bool) -> np.ndarray:
  """`value` as float64 of the given shape, finite (and >= 0); raises naming `name` otherwise.

  Args:
    name: the argument's name, for messages ("scores", "weights").
    value: real array, one value per sample.
    shape: the shape of the answer ids it goes with.
    nonnegative: whether negative values are refused (weights).

  Returns:
    float64 array.
  """
  array = np.asarray(value)
  if array.dtype == bool or not (
      np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
  ):
    raise ValueError(f"{name} must hold real numbers, one per sample, got dtype {array.dtype}.")
  if array.shape != tuple(shape):
    raise ValueError(
        f"{name} must have the shape of the answer ids {tuple(shape)}, one value per sample, got "
        f"shape {array.shape}."
    )
  array = array.astype(np.float64)
  bad = ~np.isfinite(array)
  if np.any(bad):
    raise ValueError(f"{name} must be finite (no NaN or inf); {int(bad.sum())} entries are not.")
  if nonnegative and np.any(array < 0.0):
    raise ValueError(
        f"{name} must be >= 0 (weights, e.g. np.exp(mean_token_logprob(...))), got a minimum of "
        f"{array.min()}."
    )
  return array


class _Tally(NamedTuple):
  """Each group's samples sorted by answer, with the leading answers marked.

  Attributes:
    order: int64[G, n], the sort: slot order[g, j] holds the j-th sorted sample.
    ids: int64[G, n], the sorted answer ids.
    top: bool[G, n], True at the last sorted slot of each answer >= 0 whose
      total (count, or total weight) is the group's largest; all False for a
      group without an answer.
  """

  order: np.ndarray
  ids: np.ndarray
  top: np.ndarray


def _tally_answers(answer_ids: np.ndarray, weights: np.ndarray | None) -> _Tally:
  """Sort each group by answer and mark the answers with the largest total.

  Totals are float64 sums in slot order within each answer (counts are
  exact); a tie is exact equality of totals.

  Args:
    answer_ids: int64[G, n], checked ids.
    weights: float64[G, n] checked weights, or None to count samples.

  Returns:
    _Tally.
  """
  order = np.argsort(answer_ids, axis=1, kind="stable")
  ids = np.take_along_axis(answer_ids, order, axis=1)
  num_groups = ids.shape[0]
  change = ids[:, 1:] != ids[:, :-1]
  edge = np.ones((num_groups, 1), dtype=bool)
  first = np.concatenate([edge, change], axis=1)
  last = np.concatenate([change, edge], axis=1)
  if weights is None:
    values = np.ones(ids.shape, dtype=np.float64)
  else:
    values = np.take_along_axis(weights, order, axis=1)
  totals = np.full(ids.shape, -np.inf)
  # Every group starts a run at its first slot, so runs never cross groups.
  totals.reshape(-1)[np.flatnonzero(last)] = np.add.reduceat(values.reshape(-1), np.flatnonzero(first))
  totals[ids < 0] = -np.inf  # no answer never leads.
  best = totals.max(axis=1, keepdims=True)
  top = last & np.isfinite(totals) & (totals == best)
  return _Tally(order, ids, top)


def _best_scored(answer_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """bool[G, n]: the samples best-of-n chooses among (highest score, answered first).

  Samples without an answer (-1) are passed over unless no sample of the
  group has an answer.

  Args:
    answer_ids: int64[G, n], checked ids.
    scores: float64[G, n], checked finite scores.

  Returns:
    bool[G, n], at least one True per group.
  """
  answered = answer_ids >= 0
  pool = answered | ~np.any(answered, axis=1, keepdims=True)
  masked = np.where(pool, scores, -np.inf)
  return pool & (masked == masked.max(axis=1, keepdims=True))


def _pick(candidates: np.ndarray, keys: np.ndarray, tie_seed: int) -> np.ndarray:
  """int64[G]: per row, the candidate column whose key has the highest priority.

  Equal priorities (probability 2**-64 per pair) fall back to the first column.
  """
  priority = tie_priorities(keys, tie_seed=tie_seed)
  best = np.where(candidates, priority, np.uint64(0)).max(axis=1, keepdims=True)
  return np.argmax(candidates & (priority == best), axis=1)


def _groups(answer_ids, name: str = "answer_ids") -> tuple[np.ndarray, tuple]:
  ids = _answer_id_array(name, answer_ids)
  return ids.reshape(-1, ids.shape[-1]), ids.shape


def _vote(answer_ids, weights, tie_seed) -> np.ndarray:
  tie_seed = _validate.int_argument("tie_seed", tie_seed, minimum=0)
  ids, shape = _groups(answer_ids)
  if weights is not None:
    weights = _sample_values("weights", weights, shape, nonnegative=True).reshape(ids.shape)
  tally = _tally_answers(ids, weights)
  pick = _pick(tally.top, tally.ids, tie_seed)
  vote = tally.ids[np.arange(ids.shape[0]), pick]
  return np.where(tally.top.any(axis=1), vote, NO_ANSWER).reshape(shape[:-1])


def majority_vote(answer_ids, *, tie_seed: int) -> np.ndarray:
  """The plurality answer of each group (maj@n's pick).

  The answer with the most samples wins; -1 (no answer) never wins unless
  every sample is -1. Ties between answers follow the keyed rule: the tied
  answer with the highest `tie_priorities(id, tie_seed=tie_seed)` wins,
  which for a random tie seed is uniform among the tied answers.

  Args:
    answer_ids: int[..., n] answer ids of each group's samples (-1 = none).
    tie_seed: int >= 0, required (no hidden randomness).

  Returns:
    int64[...]: the voted answer id per group, -1 for a group without answers.
  """
  return _vote(answer_ids, None, tie_seed)


def weighted_vote(answer_ids, weights, *, tie_seed: int) -> np.ndarray:
  """The answer with the largest total weight in each group.

  Each answer's total is the float64 sum of its samples' weights; -1 never
  wins unless every sample is -1 (an answer of total weight 0 still beats
  no answer). Ties (equal totals) follow the keyed rule of `majority_vote`.
  With all weights equal this is `majority_vote`.

  Args:
    answer_ids: int[..., n] answer ids (-1 = none).
    weights: float[..., n] weights >= 0, e.g.
      np.exp(mean_token_logprob(token_logprobs, lengths)).
    tie_seed: int >= 0, required.

  Returns:
    int64[...]: the chosen answer id per group, -1 for a group without answers.
  """
  return _vote(answer_ids, weights, tie_seed)


def best_of_n(answer_ids, scores, *, tie_seed: int) -> np.ndarray:
  """The slot of the highest-scored sample of each group (bon@n's pick).

  Samples without an answer are passed over unless every sample is -1.
  Tied top scores follow the keyed rule over slots: the tied slot i with the
  highest `tie_priorities(i, tie_seed=tie_seed)` wins (uniform among the
  tied samples for a random tie seed). The answer is
  np.take_along_axis(answer_ids, slot[..., None], axis=-1)[..., 0].

  Args:
    answer_ids: int[..., n] answer ids (-1 = none).
    scores: float[..., n] finite scores, higher is better; the built-in
      score is `mean_token_logprob`.
    tie_seed: int >= 0, required.

  Returns:
    int64[...]: the chosen slot per group, in [0, n).
  """
  tie_seed = _validate.int_argument("tie_seed", tie_seed, minimum=0)
  ids, shape = _groups(answer_ids)
  scores = _sample_values("scores", scores, shape, nonnegative=False).reshape(ids.shape)
  slots = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
  return _pick(_best_scored(ids, scores), slots, tie_seed).reshape(shape[:-1])


def mean_token_logprob(token_logprobs, lengths) -> np.ndarray:
  """Mean log-probability of each sample's tokens, the built-in best-of-n score.

  Args:
    token_logprobs: float[..., T], the model's log-probability of each
      generated token; entries at or past a sample's length are ignored
      (padding may be anything, NaN included).
    lengths: int[...] (token_logprobs.shape[:-1]), each in [1, T]: the
      sample's number of tokens.

  Returns:
    float64[...]: the mean over each sample's first `length` tokens.

  Raises:
    ValueError: on shapes that do not match, lengths outside [1, T], or a
      non-finite log-probability within a sample's length.
  """
  logprobs = np.asarray(token_logprobs)
  if logprobs.dtype == bool or not (
      np.issubdtype(logprobs.dtype, np.floating) or np.issubdtype(logprobs.dtype, np.integer)
  ):
    raise ValueError(f"token_logprobs must hold real numbers, got dtype {logprobs.dtype}.")
  if logprobs.ndim == 0 or logprobs.shape[-1] == 0:
    raise ValueError(f"token_logprobs must be [..., T] with T >= 1, got shape {logprobs.shape}.")
  lengths = np.asarray(lengths)
  if lengths.dtype == bool or not np.issubdtype(lengths.dtype, np.integer):
    raise ValueError(f"lengths must hold integer token counts, got dtype {lengths.dtype}.")
  if lengths.shape != logprobs.shape[:-1]:
    raise ValueError(
        f"lengths must have shape token_logprobs.shape[:-1] = {logprobs.shape[:-1]}, got {lengths.shape}."
    )
  num_tokens = logprobs.shape[-1]
  if lengths.size and (lengths.min() < 1 or lengths.max() > num_tokens):
    raise ValueError(
        f"lengths must be in [1, {num_tokens}] (T = token_logprobs.shape[-1]), got values in "
        f"[{lengths.min()}, {lengths.max()}]."
    )
  inside = np.arange(num_tokens) < lengths[..., None]
  logprobs = logprobs.astype(np.float64)
  if not np.all(np.isfinite(logprobs[inside])):
    raise ValueError("token_logprobs must be finite within each sample's length (no NaN or inf).")
  return np.where(inside, logprobs, 0.0).sum(axis=-1) / lengths
