"""GRPO rewards: scoring every completion of a batch of groups, and the log's statistics of the groups.

    reward_fn = task_reward_fn(task, "binary")          # or any reward(problem, text) -> float
    rewards = score_rewards(reward_fn, problems, texts)  # float32[P, G]
    stats = group_stats(rewards, texts, lengths, ended)  # the train log's group fields

Rewards (`REWARDS`) are `task.score_text(problem, text, "compact")`, either
"binary" (1 when it reaches tasks.PASS_SCORE, else 0) or "partial"
(reasoning-gym's partial credit); GRPO takes any `reward_fn(problem, text)`
instead. A reward function that raises or returns something that is not a
finite number stops the run with a ValueError naming the problem, the sample
and its completion.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from qmotto.rl import advantages as advantages_lib
from qmotto.train import data

REWARDS = ("binary", "partial")

RewardFn = Callable[[Any, str], float]


def task_reward_fn(task, kind: str = "binary") -> RewardFn:
  """reward(problem, text): `task.score_text` (compact), thresholded at PASS_SCORE for "binary"."""
  if kind not in REWARDS:
    raise ValueError(f"config.reward must be one of {REWARDS}, got {kind!r}.")
  from qmotto.tasks import PASS_SCORE  # pylint: disable=g-import-not-at-top

  if kind == "binary":
    return lambda problem, text: float(task.score_text(problem, text, data.STYLE) >= PASS_SCORE)
  return lambda problem, text: float(task.score_text(problem, text, data.STYLE))


def score_rewards(reward_fn: RewardFn, problems: Sequence[Any], texts: Sequence[Sequence[str]]) -> np.ndarray:
  """float32[P, G] rewards of every completion.

  Raises:
    ValueError: the reward function raised, or returned something that is not
      a finite number; the message names the problem, the sample and its text.
  """
  rows = []
  for row, (problem, group) in enumerate(zip(problems, texts)):
    where = f"problem {getattr(problem, 'index', row)} (row {row} of the batch)"
    values = []
    for i, text in enumerate(group):
      try:
        value = reward_fn(problem, text)
      except Exception as e:  # pylint: disable=broad-except
        raise ValueError(
            f"the reward function raised {type(e).__name__}: {e} on {where}, sample {i}, completion {text!r}."
        ) from e
      try:
        value = float(value)
      except (TypeError, ValueError) as e:
        raise ValueError(
            f"the reward function returned {value!r} (not a number) on {where}, sample {i}, completion {text!r}."
        ) from e
      if not math.isfinite(value):
        raise ValueError(
            f"the reward function returned {value} on {where}, sample {i}, completion {text!r}; rewards "
            "must be finite numbers."
        )
      values.append(value)
    rows.append(values)
  return np.asarray(rows, np.float32)



def distinct_completions(texts: Sequence[Sequence[str]]) -> float:
  """Mean number of distinct completions per group (texts[P][G])."""
  return float(np.mean([len(set(group)) for group in texts]))


def group_stats(rewards: np.ndarray, texts: Sequence[Sequence[str]], lengths: np.ndarray, ended: np.ndarray
                ) -> dict[str, float]:
  """What the train log records of a batch of P groups of G completions.

  Args:
    rewards: float32[P, G] (`score_rewards`).
    texts: the completions, texts[P][G].
    lengths: int[P, G] completion tokens (EOS included).
    ended: bool[P, G] whether a completion ended with EOS (not cut at max_new_tokens).

  Returns:
    {"reward" (mean), "zero_variance" (fraction of groups whose rewards are all
    equal: no signal), "distinct" (`distinct_completions`), "length" (mean
    tokens), "no_eos" (fraction of completions without EOS)}.
  """
  return {
      "reward": float(rewards.mean()),
      "zero_variance": float(advantages_lib.zero_variance_fraction(rewards)),
      "distinct": distinct_completions(texts),
      "length": float(lengths.mean()),
      "no_eos": float(1.0 - np.mean(ended)),
  }
