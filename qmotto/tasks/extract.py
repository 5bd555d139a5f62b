"""Chat prompts and final-answer extraction for instruct models."""

from __future__ import annotations

import re

# Appended to every chat question.
ANSWER_INSTRUCTION = "Write your final answer, in the format asked for above, between <answer> and </answer> tags."

_CLOSED = re.compile(r"<answer>((?:(?!<answer>).)*?)</answer>", re.IGNORECASE | re.DOTALL)
_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_CLOSE = re.compile(r"</answer>", re.IGNORECASE)
_MARKER = re.compile(r"answer\s*:", re.IGNORECASE)


def chat_messages(question: str, system: str | None = None) -> list[dict[str, str]]:
  """[system message if given,] the user message: `question`, a blank line, ANSWER_INSTRUCTION."""
  messages = [] if system is None else [{"role": "system", "content": system}]
  messages.append({"role": "user", "content": f"{question.rstrip()}\n\n{ANSWER_INSTRUCTION}"})
  return messages


def _clean(text: str) -> str:
  """Drops surrounding whitespace, markdown emphasis/code marks and trailing periods."""
  previous = None
  while text != previous:
    previous = text
    text = text.strip().strip("*`").rstrip(".")
  return text


def extract_answer(text: str | None) -> str | None:
  """The final answer in a chat model's reply, or None.

  The first rule that yields a non-empty answer wins:
    1. Tags: the content of the last complete <answer>...</answer> pair
       (the innermost: "in <answer> tags: <answer>7</answer>" gives "7"). If
       there is none, the text after the last <answer> (a sampler that stops
       at "</answer>" drops the closing tag); if there is no <answer> at all,
       the text before the first </answer> (the opening tag was in the
       prompt). Tags are case-insensitive; the content keeps its inner lines
       (sudoku grids) and only loses surrounding whitespace. An empty tag
       content gives None without trying the rules below.
    2. Marker: the rest of the line after the last "answer:" (any case, so
       also "Answer:", "Final answer :"), cleaned (see 4).
    3. Otherwise the last non-empty line, cleaned.
    4. Cleaning (rules 2-3 only) strips surrounding whitespace, '*' and '`'
       (markdown) and trailing '.' ("**17**." gives "17").
  None for non-strings and for text without any non-blank character.
  """
  if not isinstance(text, str):
    return None
  closed = _CLOSED.findall(text)
  if closed:
    return closed[-1].strip() or None
  opens = list(_OPEN.finditer(text))
  if opens:
    return text[opens[-1].end():].strip() or None
  close = _CLOSE.search(text)
  if close:
    return text[: close.start()].strip() or None
  markers = list(_MARKER.finditer(text))
  if markers:
    answer = _clean(text[markers[-1].end():].split("\n", 1)[0])
    if answer:
      return answer
  lines = [_clean(line) for line in text.splitlines()]
  lines = [line for line in lines if line]
  return lines[-1] if lines else None
