"""Test doubles shared by the training tests: a synthetic task with the qmotto.tasks interface, a reward."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Problem:
  index: int
  question: str
  answer: str
  entry: dict


@dataclasses.dataclass(frozen=True)
class ReverseTask:
  """A synthetic task with the qmotto.tasks interface: reverse 2-4 digits."""

  name: str = "reverse"
  max_digits: int = 4

  @property
  def options_dict(self) -> dict:
    return {"max_digits": self.max_digits}

  def to_dict(self) -> dict:
    return {"name": self.name, "options": self.options_dict}

  def problems(self, split: str, n: int, start: int = 0) -> list:
    out = []
    for index in range(start, start + n):
      rng = np.random.default_rng([{"train": 0, "test": 1}[split], index])
      digits = "".join(map(str, rng.integers(0, 10, rng.integers(2, self.max_digits + 1))))
      out.append(Problem(index, digits, digits[::-1], {}))
    return out

  def compact_prompt(self, problem) -> str:
    return problem.question + "="

  def compact_target(self, problem) -> str:
    return problem.answer

  def compact_charset(self) -> str:
    return "0123456789="

  def score_text(self, problem, text, style) -> float:
    del style
    return float(text == problem.answer)


def char_reward(problem, text) -> float:
  """Partial credit with variance even for a random model: matching characters."""
  return sum(a == b for a, b in zip(text, problem.answer)) / len(problem.answer) + 0.1 * ("5" in text)


def override(config, **overrides):
  """Sets config fields (`model.x` reaches into config.model); returns config."""
  for key, value in overrides.items():
    if key.startswith("model."):
      config.model[key[len("model."):]] = value
    else:
      config[key] = value
  return config
