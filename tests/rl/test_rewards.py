"""GRPO rewards (qmotto.rl.rewards): bad rewards are named; the groups' statistics."""

import numpy as np
import pytest

from qmotto.rl import rewards

from ..fakes import ReverseTask

TASK = ReverseTask(max_digits=3)


@pytest.mark.parametrize("bad, match", [
    (float("nan"), r"returned nan on problem 0 \(row 0 of the batch\), sample 0, completion '.*'; rewards must be finite"),
    ("high", "returned 'high' \\(not a number\\)"),
    (None, "returned None \\(not a number\\)"),
])
def test_bad_rewards_are_named(bad, match):
  problems = TASK.problems("train", 2)
  with pytest.raises(ValueError, match=match):
    rewards.score_rewards(lambda problem, text: bad, problems, [["12", "3"], ["4", "5"]])
  with pytest.raises(ValueError, match="reward function raised ZeroDivisionError.*problem 1 .*sample 1, completion '5'"):
    rewards.score_rewards(lambda problem, text: 1 / (text != "5"), problems, [["12", "3"], ["4", "5"]])



def test_task_reward_fn_thresholds_binary_rewards():
  problem = TASK.problems("train", 1)[0]
  assert rewards.task_reward_fn(TASK, "binary")(problem, problem.answer) == 1.0
  assert rewards.task_reward_fn(TASK, "partial")(problem, "x") == 0.0
  with pytest.raises(ValueError, match=r"config.reward must be one of \('binary', 'partial'\), got 'exact'"):
    rewards.task_reward_fn(TASK, "exact")


def test_group_stats():
  scores = np.array([[1.0, 0.0, 1.0], [0.5, 0.5, 0.5]], np.float32)  # the second group has no signal.
  texts = [["12", "3", "12"], ["4", "4", "4"]]
  lengths = np.array([[3, 2, 3], [2, 2, 4]])
  ended = np.array([[True, True, True], [True, True, False]])
  assert rewards.distinct_completions(texts) == 1.5
  assert rewards.group_stats(scores, texts, lengths, ended) == pytest.approx(
      {"reward": 3.5 / 6, "zero_variance": 0.5, "distinct": 1.5, "length": 16 / 6, "no_eos": 1 / 6})
  assert list(rewards.group_stats(scores, texts, lengths, ended)) == [  # the log's field order.
      "reward", "zero_variance", "distinct", "length", "no_eos"]
