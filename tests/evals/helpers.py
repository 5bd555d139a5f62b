"""Test doubles shared by the pass@k runner tests: a fake task, a tiny checkpoint, the smoke config.

A tiny random character-level model is saved as an orbax checkpoint; the
task is a fake with the `qmotto.tasks` interface (single-digit sums), so the
runner's tests do not depend on the real task suite.
"""

import dataclasses
import json

from configs import passk as passk_config
from qmotto import models
from qmotto import tasks
from qmotto.models import loading
from tests.fakes import Problem
from tests.models import helpers

CHARSET = "0123456789+="


@dataclasses.dataclass(frozen=True)
class FakeTask:
  """The `qmotto.tasks.Task` interface: a + b with a, b < limit, answered by one digit."""

  limit: int = 4
  name: str = "fake_add"

  @property
  def options_dict(self):
    return {"limit": self.limit}

  def to_dict(self):
    return {"name": self.name, "options": self.options_dict}

  def problems(self, split, n, start=0):
    offset = 0 if split == "test" else 1000
    out = []
    for i in range(start, start + n):
      a, b = (7 * (i + offset)) % self.limit, (3 * (i + offset) + 1) % self.limit
      out.append(Problem(i, f"{a}+{b}", str(a + b), {}))
    return out

  def compact_prompt(self, p):
    return p.question + "="

  def chat_messages(self, p):
    return [{"role": "user", "content": f"What is {p.question}?"}]

  def compact_charset(self):
    return CHARSET

  def score_text(self, p, text, style):
    return float(text[:1] == p.answer)

  def compact_to_answer(self, p, completion):
    return completion[:1] or None


class _FakeTaskClass:
  """Stands in for `qmotto.tasks.Task`: builds a FakeTask from its to_dict()."""

  @staticmethod
  def from_dict(d):
    return FakeTask(**d["options"])


def use_fake_tasks(monkeypatch):
  """Makes `qmotto.tasks` know only the fake task (restored by monkeypatch after the test)."""
  monkeypatch.setattr(tasks, "TASK_NAMES", ("fake_add",))
  monkeypatch.setattr(tasks, "get_task", lambda name, **options: FakeTask(**options))
  monkeypatch.setattr(tasks, "Task", _FakeTaskClass)
  monkeypatch.setattr(tasks, "extract_answer", lambda text: text[:1] or None)


def save_model(path, *, chars=CHARSET, task=FakeTask(), seed=0, max_new_tokens=4):
  tokenizer = loading.CharTokenizer(chars)
  config = helpers.tiny_config(vocab_size=tokenizer.vocab_size, max_seq_len=32)
  model = models.Model(config=config, params=helpers.random_params(config, seed, scale=1.0))
  metadata = {"tokenizer": tokenizer.to_dict(), "style": "compact", "max_new_tokens": max_new_tokens}
  if task is not None:
    metadata["task"] = task.to_dict()
  loading.save_checkpoint(path, model, 1, metadata=metadata)
  return str(path)


def smoke_config(model_path, tmp_path, name="run"):
  config = passk_config.get_config("smoke")
  config.model = model_path
  assert config.samplers == ("iid", "lattice", "stratified") and config.ks == (1, 2, 8)
  config.output_dir = str(tmp_path / name / "out")
  config.workdir = str(tmp_path / name / "work")
  config.progress = False
  return config


def save_real_task_checkpoint(path, max_new_tokens: int) -> str:
  """Saves a tiny random char model for a real task (countdown) at `path`; returns the task name.

  Its metadata names the task, the tokenizer and the compact style, as a
  trained task model's does, so `experiments/passk.py` runs it end to end.
  """
  name = "countdown" if "countdown" in tasks.TASK_NAMES else sorted(tasks.TASK_NAMES)[0]
  task = tasks.get_task(name)
  chars = "".join(sorted(set(task.compact_charset())))
  prompt = max(len(task.compact_prompt(p)) for p in task.problems("test", 2))
  tokenizer = loading.CharTokenizer(chars)
  config = helpers.tiny_config(vocab_size=tokenizer.vocab_size, max_seq_len=prompt + 24)
  model = models.Model(config=config, params=helpers.random_params(config, 0, scale=1.0))
  loading.save_checkpoint(path, model, 1, metadata={
      "tokenizer": tokenizer.to_dict(), "task": task.to_dict(), "style": "compact",
      "max_new_tokens": max_new_tokens})
  return task.name


def same_json(a, b) -> bool:
  """Equal as JSON, NaN included (a coupled sampler below i.i.d. saves NaN samples)."""
  return json.dumps(a) == json.dumps(b)


def interrupt_at_chunk(number: int):
  """An on_chunk callback that raises KeyboardInterrupt at the number-th chunk."""
  calls = []

  def interrupt(sampler, size, chunk):
    calls.append((sampler, size, chunk))
    if len(calls) == number:
      raise KeyboardInterrupt("killed midway")

  return interrupt
