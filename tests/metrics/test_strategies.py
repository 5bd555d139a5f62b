"""The strategies on hand-made groups: votes, best-of-n, the keyed tie rule, answers and scores, errors."""

import math

import numpy as np
import pytest

from qmotto import metrics

# A correct implementation fails a frequency check below with probability
# < DELTA: Hoeffding, P(|frequency - 1/T| >= t) <= 2 exp(-2 m t^2) over m
# seeds whose priorities behave like independent draws.
DELTA = 1e-9


def hoeffding_t(num, delta=DELTA):
  """t with 2 exp(-2 num t^2) = delta."""
  return math.sqrt(math.log(2.0 / delta) / (2.0 * num))


def _keyed_winner(candidates, seed):
  """The candidate id the keyed rule picks: the highest tie priority."""
  priorities = metrics.tie_priorities(np.array(candidates), tie_seed=seed)
  return candidates[int(np.argmax(priorities))]


# --- majority -------------------------------------------------------------------


def test_majority_takes_the_plurality():
  groups = [[2, 2, 1, 0, 2], [0, 1, 1, 3, 3], [5, 4, 4, 4, 5]]
  # Row 1 ties 1 and 3: whichever the keyed rule prefers.
  want = [2, _keyed_winner([1, 3], 0), 4]
  np.testing.assert_array_equal(metrics.majority_vote(groups, tie_seed=0), want)


def test_majority_is_batched_over_leading_axes():
  rng = np.random.default_rng(0)
  ids = rng.integers(-1, 4, size=(3, 5, 7))
  got = metrics.majority_vote(ids, tie_seed=11)
  assert got.shape == (3, 5) and got.dtype == np.int64
  for index in np.ndindex(3, 5):
    assert got[index] == metrics.majority_vote(ids[index], tie_seed=11)


@pytest.mark.parametrize("seed", range(40))
def test_majority_ties_follow_the_keyed_rule(seed):
  want = _keyed_winner([1, 3, 7], seed)
  # The rule is keyed by answer, not by slot: any order of the group gives the same winner.
  for group in ([3, 3, 1, 1, 7, 7, 0], [7, 1, 3, 0, 1, 7, 3], [0, 7, 7, 3, 3, 1, 1]):
    assert metrics.majority_vote(group, tie_seed=seed) == want
  # A tie between two of them: the higher of those two priorities.
  assert metrics.majority_vote([1, 7, 1, 7, 3], tie_seed=seed) == _keyed_winner([1, 7], seed)


def test_keyed_rule_changes_with_the_seed():
  winners = {int(metrics.majority_vote([0, 1, 0, 1], tie_seed=s)) for s in range(40)}
  assert winners == {0, 1}


def test_ties_are_uniform_over_random_seeds():
  num_seeds = 3000
  t = hoeffding_t(num_seeds)  # about 0.06
  votes = np.array([metrics.majority_vote([4, 9, 2, 9, 4, 2, 0], tie_seed=s) for s in range(num_seeds)])
  for answer in (2, 4, 9):
    assert abs(np.mean(votes == answer) - 1 / 3) < t
  assert set(votes.tolist()) == {2, 4, 9}


def test_no_answer_never_wins_unless_alone():
  assert metrics.majority_vote([-1, -1, -1, 5], tie_seed=0) == 5
  assert metrics.majority_vote([-1, -1, -1, -1], tie_seed=0) == -1
  assert metrics.weighted_vote([-1, -1, 2], [9.0, 9.0, 0.5], tie_seed=0) == 2
  assert metrics.weighted_vote([-1, 3], [1.0, 0.0], tie_seed=0) == 3  # weight 0 still beats no answer.
  assert metrics.weighted_vote([-1, -1], [1.0, 2.0], tie_seed=0) == -1
  assert metrics.best_of_n([-1, 4, 6], [9.0, 0.5, 0.25], tie_seed=0) == 1
  assert metrics.best_of_n([-1, -1, -1], [0.0, 2.0, 1.0], tie_seed=0) == 1  # all -1: the best of them.


# --- weighted vote -----------------------------------------------------------------


def test_weighted_vote_sums_weights_per_answer():
  # Answer 1 has more samples, answer 0 the larger total (1.5 > 1.25).
  assert metrics.weighted_vote([0, 1, 1, 1, 2], [1.5, 0.5, 0.5, 0.25, 1.0], tie_seed=0) == 0
  assert metrics.majority_vote([0, 1, 1, 1, 2], tie_seed=0) == 1


@pytest.mark.parametrize("seed", range(20))
def test_weighted_vote_ties_follow_the_keyed_rule(seed):
  # Totals 1.0 for answers 2 and 5 (exact in binary), 0.75 for answer 1.
  got = metrics.weighted_vote([2, 5, 5, 1, 2], [0.5, 0.25, 0.75, 0.75, 0.5], tie_seed=seed)
  assert got == _keyed_winner([2, 5], seed)


def test_equal_weights_are_majority():
  rng = np.random.default_rng(1)
  ids = rng.integers(-1, 4, size=(500, 6))
  for seed in (0, 3):
    np.testing.assert_array_equal(
        metrics.weighted_vote(ids, np.full(ids.shape, 0.3), tie_seed=seed),
        metrics.majority_vote(ids, tie_seed=seed),
    )


# --- best of n ----------------------------------------------------------------------


def test_best_of_n_picks_the_highest_score():
  ids = [[0, 1, 2, 1], [3, 3, 0, 1]]
  scores = [[-1.0, -0.5, -2.0, -0.7], [0.0, 2.0, 1.0, -3.0]]
  np.testing.assert_array_equal(metrics.best_of_n(ids, scores, tie_seed=0), [1, 1])


@pytest.mark.parametrize("seed", range(40))
def test_best_of_n_ties_follow_the_keyed_rule_over_slots(seed):
  ids = [4, 2, 4, 9, 2]
  scores = [1.0, 3.0, 3.0, 3.0, -1.0]  # slots 1, 2, 3 tie.
  assert metrics.best_of_n(ids, scores, tie_seed=seed) == _keyed_winner([1, 2, 3], seed)


def test_best_of_n_ties_are_uniform_over_random_seeds():
  num_seeds = 3000
  t = hoeffding_t(num_seeds)
  picks = np.array(
      [metrics.best_of_n([4, 4, 1, 4], [2.0, 1.0, 2.0, 2.0], tie_seed=s) for s in range(num_seeds)]
  )
  for slot in (0, 2, 3):
    assert abs(np.mean(picks == slot) - 1 / 3) < t
  assert not np.any(picks == 1)


def test_tie_priorities_are_keyed_by_seed_and_id():
  ids = np.array([[0, 1, 2], [2, 1, 0]])
  first = metrics.tie_priorities(ids, tie_seed=5)
  assert first.shape == (2, 3) and first.dtype == np.uint64
  np.testing.assert_array_equal(first[0], first[1, ::-1])  # the same id, the same priority.
  np.testing.assert_array_equal(first, metrics.tie_priorities(ids, tie_seed=5))
  assert len(set(first[0].tolist())) == 3
  assert not np.array_equal(first, metrics.tie_priorities(ids, tie_seed=6))


# --- answers and scores --------------------------------------------------------------


def test_encode_answers_per_problem():
  answers = [[["7", "3", None], ["3", "3", "x"]], [["a", None, None], ["b", "a", "b"]]]
  got = metrics.encode_answers(answers)
  np.testing.assert_array_equal(got, [[[0, 1, -1], [1, 1, 2]], [[0, -1, -1], [1, 0, 1]]])
  assert got.dtype == np.int64
  np.testing.assert_array_equal(metrics.encode_answers([[1, 1.0, "1", None]]), [[0, 0, 1, -1]])


def test_encode_answers_rejects_bad_shapes():
  with pytest.raises(ValueError, match=r"answers must be rectangular and hold scalar answers, got a list"):
    metrics.encode_answers([[["a", "b"], ["c"]]])  # ragged in the last axis.
  with pytest.raises(ValueError, match=r"answers must be a rectangular nested list \[P, \.\.\.\]"):
    metrics.encode_answers([["a", "b"], ["c"]])  # ragged in the sample axis.
  with pytest.raises(ValueError, match=r"answers must be a rectangular nested list \[P, \.\.\.\].*shape \(2,\)"):
    metrics.encode_answers(["a", "b"])  # no sample axis.
  with pytest.raises(ValueError, match=r"answers must be hashable"):
    metrics.encode_answers([[{"a": 1}, "b"]])


def test_mean_token_logprob():
  logprobs = np.array([[-1.0, -3.0, np.nan], [-0.5, -0.5, -2.0]])
  got = metrics.mean_token_logprob(logprobs, [2, 3])
  np.testing.assert_allclose(got, [-2.0, -1.0], rtol=0, atol=1e-15)  # NaN padding ignored.
  batched = metrics.mean_token_logprob(np.zeros((2, 3, 4)) - 1.0, np.ones((2, 3), dtype=np.int32))
  np.testing.assert_array_equal(batched, -np.ones((2, 3)))


def test_mean_token_logprob_errors():
  logprobs = np.zeros((2, 3))
  with pytest.raises(ValueError, match=r"lengths must be in \[1, 3\]"):
    metrics.mean_token_logprob(logprobs, [0, 2])
  with pytest.raises(ValueError, match=r"lengths must be in \[1, 3\]"):
    metrics.mean_token_logprob(logprobs, [4, 2])
  with pytest.raises(ValueError, match=r"lengths must have shape token_logprobs.shape\[:-1\]"):
    metrics.mean_token_logprob(logprobs, [1, 2, 3])
  with pytest.raises(ValueError, match=r"lengths must hold integer"):
    metrics.mean_token_logprob(logprobs, [1.0, 2.0])
  with pytest.raises(ValueError, match=r"token_logprobs must be finite within"):
    metrics.mean_token_logprob([[0.0, np.nan, 0.0]], [2])


def test_get_strategy():
  assert metrics.STRATEGIES == ("pass", "majority", "weighted", "best_of_n")
  assert metrics.get_strategy("majority").label == "maj@k"
  assert metrics.get_strategy("best_of_n").scores == "scores"
  assert metrics.get_strategy("weighted").scores == "weights"
  for name in metrics.STRATEGIES:
    assert metrics.get_strategy(name).name == name
  with pytest.raises(ValueError, match=r"strategy must be one of \('pass', 'majority', 'weighted', 'best_of_n'\), got 'maj'"):
    metrics.get_strategy("maj")


# --- bad input -----------------------------------------------------------------------


def test_answer_ids_must_be_integers():
  with pytest.raises(ValueError, match=r"answer_ids must hold integer answer ids .*encode_answers.*float64"):
    metrics.majority_vote([0.0, 1.0], tie_seed=0)
  with pytest.raises(ValueError, match=r"answer_ids must hold integer answer ids .*bool"):
    metrics.best_of_n([True, False], [1.0, 2.0], tie_seed=0)
  with pytest.raises(ValueError, match=r"answer_ids must hold integer answer ids .*dtype <U1"):
    metrics.weighted_vote(["a", "b"], [1.0, 2.0], tie_seed=0)
  with pytest.raises(ValueError, match=r"answer_ids must be >= -1"):
    metrics.majority_vote([0, -2], tie_seed=0)
  with pytest.raises(ValueError, match=r"answer_ids must be a rectangular int array"):
    metrics.majority_vote([[0, 1], [2]], tie_seed=0)


def test_scores_and_weights_are_checked():
  with pytest.raises(ValueError, match=r"scores must have the shape of the answer ids \(3,\)"):
    metrics.best_of_n([0, 1, 2], [1.0, 2.0], tie_seed=0)
  with pytest.raises(ValueError, match=r"scores must be finite \(no NaN or inf\); 1 entries"):
    metrics.best_of_n([0, 1], [np.nan, 2.0], tie_seed=0)
  with pytest.raises(ValueError, match=r"weights must be finite"):
    metrics.weighted_vote([0, 1], [np.inf, 2.0], tie_seed=0)
  with pytest.raises(ValueError, match=r"weights must be >= 0 .*mean_token_logprob"):
    metrics.weighted_vote([0, 1], [-0.5, 2.0], tie_seed=0)
  with pytest.raises(ValueError, match=r"weights must hold real numbers"):
    metrics.weighted_vote([0, 1], [True, False], tie_seed=0)


def test_tie_seed_is_required_and_checked():
  with pytest.raises(TypeError, match=r"tie_seed"):
    metrics.majority_vote([0, 1])  # pylint: disable=missing-kwoa
  with pytest.raises(ValueError, match=r"tie_seed must be an int, got None"):
    metrics.majority_vote([0, 1], tie_seed=None)
  with pytest.raises(ValueError, match=r"tie_seed must be an int >= 0, got -1"):
    metrics.best_of_n([0, 1], [0.0, 1.0], tie_seed=-1)
