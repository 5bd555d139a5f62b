"""What the pass@k runner resolves before sampling: the model, the task, the prompt style, the prompts.

`setup(config)` checks the config and that the run can write its directories,
loads the model (a task model's orbax checkpoint, "smollm2-135m-instruct", a
Hugging Face directory or a .gguf), resolves the task against the checkpoint's metadata, picks the prompt style
and encodes `num_problems` test problems to one padded length.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import numpy as np

from qmotto import tasks
from qmotto.evals import run_config
from qmotto.models import llama
from qmotto.models import loading
from qmotto.tasks import prompting


class Setup(NamedTuple):
  """Everything `run` resolves from the config before sampling."""

  model: llama.Model
  tokenizer: Any
  task: Any
  style: str
  problems: list
  prompts: np.ndarray  # int32[P, Lp]
  prompt_lengths: np.ndarray  # int32[P]
  max_new_tokens: int
  model_name: str
  metadata: dict | None  # the checkpoint's metadata (None for other models)


def model_label(path_or_name: str) -> str:
  """A file-name-safe model label: the name, or the path's base name without extension."""
  text = os.path.basename(os.path.normpath(os.fspath(path_or_name)))
  text = os.path.splitext(text)[0] if text.lower().endswith(".gguf") else text
  return "".join(c if c.isalnum() or c in "-._" else "-" for c in text) or "model"


def load_model_and_metadata(path_or_name: str):
  """(model, tokenizer, metadata): like `qmotto.load_model`, plus an orbax checkpoint's metadata.

  Args:
    path_or_name: config.model: a checkpoint directory, a Hugging Face
      directory, a .gguf or a model name. Metadata is None for all but
      orbax checkpoints.

  Raises:
    ValueError: naming the path, for anything it cannot load (missing, corrupt,
      foreign or unrecognized checkpoints).
  """
  text = os.fspath(path_or_name)
  if not text:
    raise ValueError("config.model is empty; give a checkpoint directory, a .gguf or a model name.")
  try:
    return loading.load_model_with_metadata(text)
  except ValueError as e:
    raise ValueError(f"config.model={text!r}: {e}") from e
  except Exception as e:  # pylint: disable=broad-except
    # orbax, safetensors and gguf raise their own types on damaged files.
    raise ValueError(f"config.model={text!r}: cannot load ({type(e).__name__}: {e}).") from e


def task_spec(task) -> dict:
  """The task's `to_dict()` as plain JSON (option values that JSON lacks become text)."""
  return json.loads(json.dumps(task.to_dict(), default=str))


def describe_run(config, s) -> dict:
  """What every runner's result file says of its run (`setup`'s `s`): task, model, style and problems."""
  return dict(
      task=s.task.name,
      task_spec=task_spec(s.task),
      model=s.model_name,
      model_path=os.fspath(config.model),
      style=s.style,
      num_problems=len(s.problems),
      problem_indices=[int(p.index) for p in s.problems],
      prompt_length=int(s.prompts.shape[1]),
      max_new_tokens=s.max_new_tokens,
  )


def resolve_task(config, metadata: dict | None, task=None):
  """The task to evaluate, checked against the checkpoint's metadata.

  Args:
    config: the run config (task, task_options).
    metadata: the checkpoint's metadata, or None.
    task: an explicit task object (overrides config.task; for tests and notebooks).
  """
  trained = (metadata or {}).get("task")
  if task is None:
    options = run_config.task_options(config)
    if config.task:
      run_config.check_task_name(config.task)
      if not options and trained and trained.get("name") == config.task:
        options = dict(trained.get("options") or {})
      try:
        task = tasks.get_task(config.task, **options)
      except (TypeError, ValueError) as e:
        raise ValueError(f"config.task_options={options!r} for task {config.task!r}: {e}") from e
    elif trained:
      if options:
        raise ValueError("config.task_options is set but config.task is not; set both or neither.")
      try:
        task = tasks.Task.from_dict(trained)
      except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"config.model={config.model!r}: metadata 'task' is not usable: {e}") from e
    else:
      raise ValueError(
          f"config.task is empty and the model {config.model!r} names no task in its metadata; "
          "set config.task."
      )
  if trained is not None:
    wanted = task_spec(task)
    if wanted != json.loads(json.dumps(trained, default=str)):
      raise ValueError(
          f"task mismatch: the checkpoint {config.model!r} was trained for task {trained} but the "
          f"config asks for {wanted}. Evaluate it on its own task (leave config.task and "
          "config.task_options empty) or use a model trained for this task."
      )
  return task


def resolve_style(config, tokenizer, metadata: dict | None) -> str:
  """config.style, or for "auto": the checkpoint's style, else "chat" when the tokenizer has a chat template."""
  if config.style != "auto":
    return config.style
  if metadata and metadata.get("style") in prompting.STYLES:
    return metadata["style"]
  return "chat" if getattr(tokenizer, "chat_template", None) is not None else "compact"


def setup(config, *, task=None) -> Setup:
  """Checks the config and the directories, loads the model and task and encodes the prompts.

  Raises:
    ValueError: naming the config field, for bad samplers or ks, unwritable
      output or work directories, unknown
      tasks, unloadable models, a task the checkpoint was not trained for, a
      vocabulary that does not fit the task, or prompts too long for the model.
  """
  run_config.check_config(config)
  run_config.check_directories(config)  # an unwritable path fails before loading the model.
  model, tokenizer, metadata = load_model_and_metadata(config.model)
  task = resolve_task(config, metadata, task)
  style = resolve_style(config, tokenizer, metadata)
  prompting.check_vocabulary(model, tokenizer, task, style)
  max_new_tokens = int(config.max_new_tokens) or int((metadata or {}).get("max_new_tokens") or 0)
  if not max_new_tokens:
    raise ValueError(
        f"config.max_new_tokens is 0 (take it from the checkpoint) but the model {config.model!r} "
        "has no 'max_new_tokens' metadata; set config.max_new_tokens."
    )
  problems = list(task.problems(config.split, config.num_problems, start=config.start))
  if len(problems) != config.num_problems:
    raise ValueError(
        f"config.num_problems={config.num_problems}: task {task.name!r} gave {len(problems)} "
        f"{config.split!r} problems from start={config.start}."
    )
  pad_id = tokenizer.pad_id if tokenizer.pad_id is not None else tokenizer.eos_id
  try:
    shots = int(config.get("chat_shots", 0)) if style == "chat" else 0
    prompts, lengths = prompting.encode_prompts(tokenizer, task, problems, style, pad_id=pad_id, shots=shots)
  except ValueError as e:
    raise ValueError(f"task {task.name!r} in style {style!r} cannot be encoded by this model's tokenizer: {e}") from e
  limit = model.config.max_seq_len
  if prompts.shape[1] >= limit:
    raise ValueError(
        f"the longest prompt has {prompts.shape[1]} tokens, no fewer than the model's max_seq_len={limit}: "
        f"shorten the prompts (config.chat_shots={shots} solved examples precede each question)."
    )
  if prompts.shape[1] + max_new_tokens > limit:
    raise ValueError(
        f"config.max_new_tokens={max_new_tokens}: the longest prompt has {prompts.shape[1]} tokens "
        f"and prompt + max_new_tokens must be <= the model's max_seq_len={limit}; lower "
        f"max_new_tokens to at most {limit - prompts.shape[1]}."
    )
  if tokenizer.eos_id is None:
    raise ValueError(f"config.model={config.model!r}: the tokenizer has no EOS token to end completions.")
  name = config.model_name or model_label(config.model)
  return Setup(model, tokenizer, task, style, problems, prompts, lengths, max_new_tokens, name, metadata)
