"""Task problems -> prompt token arrays, and sampled tokens -> completion text.

Two prompt styles, shared by training, the pass@k runner and GRPO:
  "compact": `task.compact_prompt(problem)` encoded by the model's tokenizer
    (bos first for a `CharTokenizer`), for the small task models trained here;
  "chat": `task.chat_messages(problem)` through the tokenizer's chat template,
    for instruct models such as SmolLM2.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from qmotto.tasks.task import STYLES  # ("compact", "chat")


def check_style(style: str) -> str:
  if style not in STYLES:
    raise ValueError(f"style must be one of {STYLES}, got {style!r}.")
  return style


def prompt_text_ids(tokenizer: Any, task: Any, problem: Any, style: str, *, shots: int = 0) -> list[int]:
  """Token ids of one problem's prompt in `style` (chat: after `shots` solved train examples)."""
  check_style(style)
  if style == "compact":
    if shots:
      raise ValueError(f"shots={shots} applies to style 'chat' only; the compact format has none.")
    return tokenizer.encode(task.compact_prompt(problem))
  if getattr(tokenizer, "chat_template", None) is None:
    raise ValueError(f"style 'chat' needs a tokenizer with a chat template; {tokenizer!r} has none.")
  return tokenizer.encode_chat(task.chat_messages(problem, shots=shots) if shots else task.chat_messages(problem))


def check_vocabulary(model: Any, tokenizer: Any, task: Any, style: str) -> None:
  """Raises ValueError if this model and tokenizer cannot serve `task` in `style`.

  A character-level task model must know every character the task's compact
  format can contain; any tokenizer's ids must fit the model's vocabulary.
  """
  check_style(style)
  if tokenizer is None:
    raise ValueError(
        "the model has no tokenizer (a checkpoint without tokenizer metadata, or a Hugging Face "
        "directory without tokenizer.json); the pass@k runner needs one to encode prompts."
    )
  vocab = int(model.config.vocab_size)
  if tokenizer.vocab_size > vocab:
    raise ValueError(
        f"tokenizer has {tokenizer.vocab_size} ids but the model's vocab_size is {vocab}: "
        "they do not belong together."
    )
  missing = getattr(tokenizer, "missing", None)
  if style == "compact" and missing is not None:
    unknown = missing(task.compact_charset())
    if unknown:
      raise ValueError(
          f"task {task.name!r} (compact format) uses characters {unknown!r} that the model's "
          f"vocabulary lacks: this model was not trained for this task."
      )


def encode_prompts(
    tokenizer: Any,
    task: Any,
    problems: Sequence[Any],
    style: str,
    *,
    length: int | None = None,
    pad_id: int,
    shots: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
  """Right-padded prompts int32[P, Lp] and their lengths int32[P].

  Args:
    shots: chat style only: solved train examples before each question.
    length: Lp, to keep one shape across calls (default: the longest prompt).
      A longer prompt raises, naming the problem.
  """
  ids = [prompt_text_ids(tokenizer, task, p, style, shots=shots) for p in problems]
  longest = max(len(x) for x in ids)
  if length is None:
    length = longest
  elif longest > length:
    worst = int(np.argmax([len(x) for x in ids]))
    raise ValueError(
        f"prompt of problem {getattr(problems[worst], 'index', worst)} has {longest} tokens, more than "
        f"length={length}."
    )
  prompts = np.full((len(ids), length), pad_id, np.int32)
  for i, x in enumerate(ids):
    prompts[i, : len(x)] = x
  return prompts, np.array([len(x) for x in ids], np.int32)


def decode_completions(tokenizer: Any, tokens: np.ndarray, lengths: np.ndarray) -> list:
  """Completion text of every sample: tokens[..., N] cut at lengths[...], special tokens (EOS) dropped.

  Returns nested lists shaped like `lengths`.
  """
  tokens, lengths = np.asarray(tokens), np.asarray(lengths)
  flat = [
      tokenizer.decode(row[:n], skip_special_tokens=True)
      for row, n in zip(tokens.reshape(-1, tokens.shape[-1]), lengths.reshape(-1))
  ]
  return np.array(flat, dtype=object).reshape(lengths.shape).tolist()
