"""Reasoning tasks from reasoning-gym: seeded disjoint splits, two prompt formats, scoring.

    from qmotto import tasks
    task = tasks.get_task("countdown", max_value=20)     # DEFAULT_OPTIONS + overrides
    problems = task.problems("test", 500)                # deterministic Problem list
    batch = task.problems("train", 64, start=640)        # stream training batches
    task.compact_prompt(problems[0]), task.compact_target(problems[0])   # "7:1,1,6=", "6/1+1"
    task.score_text(problems[0], completion, "compact")  # 1.0 when correct
    task.chat_messages(problems[0])                      # for instruct models ("chat" style)
    task.score_text(problems[0], reply, "chat")          # via extract_answer
    prompting.encode_prompts(tokenizer, task, problems, "compact", pad_id=0)  # int32[P, Lp], lengths

Tasks: the families countdown, maze, mini_sudoku, arc_1d (character-level
models trained from scratch, "compact" style), sudoku, and basic_arithmetic,
chain_sum, gsm_symbolic (a pretrained instruct model, "chat" style). Scores
are reasoning-gym's, with its partial credit: a sample is correct when its
score reaches PASS_SCORE (`task.is_correct_text`).
"""

from __future__ import annotations

from qmotto.tasks import prompting
from qmotto.tasks.extract import ANSWER_INSTRUCTION
from qmotto.tasks.extract import extract_answer
from qmotto.tasks.registry import CHAT_TASKS
from qmotto.tasks.registry import DEFAULT_OPTIONS
from qmotto.tasks.registry import EXTRA_OPTIONS
from qmotto.tasks.registry import FAMILIES
from qmotto.tasks.registry import TASK_NAMES
from qmotto.tasks.registry import option_names
from qmotto.tasks.splits import MAX_SPLIT_ITEMS
from qmotto.tasks.splits import SPLITS
from qmotto.tasks.splits import TEST_FRACTION
from qmotto.tasks.splits import TEST_SEED
from qmotto.tasks.splits import TRAIN_SEED
from qmotto.tasks.splits import Problem
from qmotto.tasks.splits import split_of_key
from qmotto.tasks.task import PASS_SCORE
from qmotto.tasks.task import STYLES
from qmotto.tasks.task import Task
from qmotto.tasks.task import get_task


def check_disjoint(task: Task, n_train: int, n_test: int) -> tuple[int, ...]:
  """Indices of the first `n_test` test problems whose question, compact prompt or
  key occurs among the first `n_train` train problems; () when disjoint."""
  seen = set()
  for p in task.problems("train", n_train):
    seen.update((("q", p.question), ("c", task.compact_prompt(p)), ("k", task.problem_key(p))))
  return tuple(
      p.index
      for p in task.problems("test", n_test)
      if {("q", p.question), ("c", task.compact_prompt(p)), ("k", task.problem_key(p))} & seen
  )


__all__ = [
    "ANSWER_INSTRUCTION",
    "CHAT_TASKS",
    "DEFAULT_OPTIONS",
    "EXTRA_OPTIONS",
    "FAMILIES",
    "MAX_SPLIT_ITEMS",
    "PASS_SCORE",
    "Problem",
    "SPLITS",
    "STYLES",
    "TASK_NAMES",
    "TEST_FRACTION",
    "TEST_SEED",
    "TRAIN_SEED",
    "Task",
    "check_disjoint",
    "extract_answer",
    "get_task",
    "option_names",
    "prompting",
    "split_of_key",
]
