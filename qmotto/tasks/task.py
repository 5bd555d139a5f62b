"""`Task`: a reasoning-gym task with fixed options, its splits, formats and scorer."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping

from qmotto.tasks import extract
from qmotto.tasks import formats
from qmotto.tasks import registry
from qmotto.tasks import splits

STYLES = ("compact", "chat")

# A sample is correct when its score reaches this (reasoning-gym gives partial
# credit: e.g. countdown 0.05 for a valid expression with the wrong value).
PASS_SCORE = 1.0


@functools.lru_cache(maxsize=64)
def _scoring_dataset(name: str, options: tuple[tuple[str, Any], ...]):
  return registry.make_dataset(name, options, seed=0, size=1)


@dataclasses.dataclass(frozen=True)
class Task:
  """A task: a reasoning-gym dataset name and all its options.

  Construct with `get_task` (or directly: missing options are filled in the
  same way and a mapping is accepted). Frozen and hashable.

  Attributes:
    name: one of TASK_NAMES.
    options: ((option, value), ...) for every option, sorted by option, values
      hashable (lists become tuples).
  """

  name: str
  options: tuple[tuple[str, Any], ...] = ()

  def __post_init__(self):
    registry.check_name(self.name)
    options = self.options
    if not isinstance(options, Mapping):
      try:
        options = dict(options)
      except (TypeError, ValueError) as e:
        raise ValueError(f"Task.options must be a mapping or (key, value) pairs, got {self.options!r}.") from e
    object.__setattr__(self, "options", registry.resolve_options(self.name, options))

  @property
  def options_dict(self) -> dict[str, Any]:
    return dict(self.options)

  def to_dict(self) -> dict[str, Any]:
    """{"name": ..., "options": {...}} with JSON types (tuples become lists)."""

    def jsonable(value):
      return [jsonable(v) for v in value] if isinstance(value, tuple) else value

    return {"name": self.name, "options": {k: jsonable(v) for k, v in self.options}}

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> Task:
    """The inverse of `to_dict`."""
    if not isinstance(d, Mapping) or "name" not in d:
      raise ValueError(f"Task.from_dict expects {{'name': ..., 'options': {{...}}}}, got {d!r}.")
    return cls(d["name"], dict(d.get("options") or {}))

  # --- Problems and scoring ----------------------------------------------------------------------

  def problems(self, split: str, n: int, start: int = 0) -> list[splits.Problem]:
    """Problems start .. start + n - 1 of `split` ("train" or "test"); deterministic.

    The splits never share a question or compact prompt (see
    `qmotto.tasks.splits`); windows of one split agree on shared indices.
    """
    return splits.problems(self.name, self.options, split, n, start)

  def score(self, problem: splits.Problem, answer: str | None) -> float:
    """reasoning-gym's `score_answer` of an already-extracted answer, in [0, 1].

    0.0 for None, a blank answer, scorer errors, and (countdown) answers that
    are not well-formed integer arithmetic (`formats.countdown_valid`;
    reasoning-gym would give them 0.01 after running sympy's eval on them).
    Partial credit is reasoning-gym's: compare with PASS_SCORE (`is_correct`).
    """
    if not isinstance(answer, str) or not answer.strip():
      return 0.0
    safe = formats.SAFE_ANSWER.get(self.name)
    if safe is not None and not safe(answer):
      return 0.0
    try:
      score = float(_scoring_dataset(self.name, self.options).score_answer(answer, problem.entry))
    except Exception:  # pylint: disable=broad-except
      return 0.0
    return min(max(score, 0.0), 1.0)

  def is_correct(self, problem: splits.Problem, answer: str | None) -> bool:
    return self.score(problem, answer) >= PASS_SCORE

  def score_text(self, problem: splits.Problem, text: str, style: str) -> float:
    """The score of raw model text: converted (compact) or extracted (chat), then scored.

    Args:
      problem: the problem.
      text: "compact": the completion after the compact prompt (its first
        line is used); "chat": the assistant's reply (`extract_answer`).
      style: "compact" or "chat".

    Never raises on model text (0.0 for garbage); ValueError for a bad style.
    """
    if style not in STYLES:
      raise ValueError(f"style must be one of {STYLES}, got {style!r}.")
    if not isinstance(text, str):
      return 0.0
    if style == "compact":
      answer = self.compact_to_answer(problem, text)
    else:
      answer = extract.extract_answer(text)
    return self.score(problem, answer)

  def is_correct_text(self, problem: splits.Problem, text: str, style: str) -> bool:
    return self.score_text(problem, text, style) >= PASS_SCORE

  def problem_key(self, problem: splits.Problem) -> str:
    """The canonical problem identity that decides its split."""
    return formats.FORMATS[self.name].key(problem.entry)

  # --- Compact format ------------------------------------------------------------------------------

  def compact_prompt(self, problem: splits.Problem) -> str:
    """Short ASCII prompt ending with the separator the model continues after (see `formats`)."""
    return formats.FORMATS[self.name].prompt(problem.entry)

  def compact_target(self, problem: splits.Problem) -> str:
    """The training completion of `compact_prompt` (no end token)."""
    return formats.FORMATS[self.name].target(problem.entry)

  def compact_to_answer(self, problem: splits.Problem, completion: str) -> str | None:
    """A compact completion (its first line) in reasoning-gym's answer format; None if malformed."""
    if not isinstance(completion, str):
      return None
    try:
      return formats.FORMATS[self.name].to_answer(problem.entry, completion)
    except Exception:  # pylint: disable=broad-except
      return None

  def compact_charset(self) -> str:
    """Every character a compact prompt or target of this task (any options) can hold, sorted."""
    return formats.FORMATS[self.name].charset

  # --- Chat format ---------------------------------------------------------------------------------

  def chat_messages(
      self, problem: splits.Problem, system: str | None = None, shots: int = 0
  ) -> list[dict[str, str]]:
    """[optional system message,] [shots,] user message: the question + ANSWER_INSTRUCTION.

    Args:
      shots: how many solved examples precede the question, as user/assistant
        turns; they are the first `shots` problems of the train split (never a
        test problem), each answered "<answer>reference</answer>". Small
        instruct models need them to follow the answer format.
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 0:
      raise ValueError(f"shots must be an int >= 0, got {shots!r}.")
    messages = [] if system is None else [{"role": "system", "content": system}]
    for example in self.problems("train", shots) if shots else []:
      messages += extract.chat_messages(example.question)
      messages.append({"role": "assistant", "content": f"<answer>{example.answer}</answer>"})
    return messages + extract.chat_messages(problem.question)


def get_task(name: str, **options: Any) -> Task:
  """The task `name` with DEFAULT_OPTIONS[name] updated by `options`.

  Raises:
    ValueError: unknown task (lists TASK_NAMES) or option (lists the allowed
      ones), `seed`/`size`, or values reasoning-gym rejects.
  """
  registry.check_name(name)
  return Task(name, options)
