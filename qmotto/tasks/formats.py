"""Compact prompt formats: short ASCII text for character-level models trained from scratch.

A compact prompt ends with a separator the model continues after; the target
is the completion (no end token). `to_answer` turns a completion back into an
answer in reasoning-gym's format, or None when it is malformed. The formats,
with examples:

  countdown         "7:1,1,6="                    -> "6/1+1"
                    target:numbers (reasoning-gym's order)= -> expression, no spaces.
  maze              "#S./..G/.#."                 -> "4"
                    the grid without its all-wall border, walls '#', passages
                    '.', start 'S', goal 'G' (reasoning-gym draws random
                    characters per item), rows joined by '/', then '='.
  mini_sudoku       "1.3./..../4.1./.3.4="        -> "1234/3412/4321/2143"
  sudoku            the same with 9 rows of 9 digits.
  arc_1d            "0022000>0000220;...;7700777>" -> "7777700"
                    each example "input>output;", then the test input and '>';
                    cells are single digits 0-9.
  basic_arithmetic  "-(20+67+-59)="               -> "-28"  (expression, no spaces)
  chain_sum         "98+93-77="                   -> "114"
  gsm_symbolic      the question, folded to printable ASCII on one line, then
                    "=" -> the number.

`key` is the canonical problem identity used to assign problems to the train or
test split (see `qmotto.tasks.splits`); it is a function of the question alone,
and equal compact prompts always have equal keys.
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Any, Callable

_DIGITS = "0123456789"


def first_line(completion: str) -> str:
  """The completion up to its first newline, stripped of surrounding whitespace."""
  return completion.split("\n", 1)[0].strip()


def sorted_charset(chars: str) -> str:
  return "".join(sorted(set(chars)))


def _int_answer(completion: str) -> str | None:
  text = first_line(completion)
  if not re.fullmatch(r"-?[0-9]{1,100}", text):
    return None
  return str(int(text))


def _no_spaces(text: str) -> str:
  return "".join(text.split())


# --- countdown -----------------------------------------------------------------------------------

_COUNTDOWN_CHARS = re.compile(r"[0-9+\-*/()\s]{1,256}")


def countdown_valid(answer: str) -> bool:
  """Whether `answer` is a well-formed countdown expression reasoning-gym may score.

  Integers combined with + - * / and parentheses (unary signs and spaces
  allowed, at most 256 characters; no ** or //, decimals or other
  characters). reasoning-gym's countdown scorer runs sympy's `parse_expr`,
  which evaluates Python code, can hang on powers such as 9**9**9, and
  accepts decimals that re-use the given digits ("1.5*2" with numbers 1, 5, 2).
  """
  if not _COUNTDOWN_CHARS.fullmatch(answer) or re.search(r"[0-9]\s+[0-9]", answer):
    return False
  return _is_expression(_no_spaces(answer))


def _is_expression(text: str) -> bool:
  """`text` is integers joined by + - * / with balanced parentheses and unary minus."""
  pos = 0

  def term() -> bool:
    nonlocal pos
    while pos < len(text) and text[pos] in "+-":  # unary signs.
      pos += 1
    if pos < len(text) and text[pos] == "(":
      pos += 1
      if not expression() or pos >= len(text) or text[pos] != ")":
        return False
      pos += 1
      return True
    start = pos
    while pos < len(text) and text[pos] in _DIGITS:
      pos += 1
    return pos > start

  def expression() -> bool:
    nonlocal pos
    if not term():
      return False
    while pos < len(text) and text[pos] in "+-*/":
      pos += 1
      if not term():
        return False
    return True

  return bool(_COUNTDOWN_CHARS.fullmatch(text)) and expression() and pos == len(text)


class _Countdown:
  charset = sorted_charset(_DIGITS + "+-*/():,=")

  def prompt(self, entry: dict) -> str:
    meta = entry["metadata"]
    return f"{meta['target']}:{','.join(str(n) for n in meta['numbers'])}="

  def target(self, entry: dict) -> str:
    return _no_spaces(entry["answer"])

  def to_answer(self, entry: dict, completion: str) -> str | None:
    text = first_line(completion)
    return _no_spaces(text) if countdown_valid(text) else None

  def key(self, entry: dict) -> str:
    meta = entry["metadata"]
    return f"countdown {meta['target']}:{','.join(str(n) for n in sorted(meta['numbers']))}"


# --- maze ----------------------------------------------------------------------------------------


class _Maze:
  charset = sorted_charset(_DIGITS + "#.SG/=")

  def grid(self, entry: dict) -> str:
    meta = entry["metadata"]
    table = {meta["wall"]: "#", meta["path"]: ".", meta["start"]: "S", meta["goal"]: "G"}
    rows = ["".join(table[c] for c in row) for row in meta["grid"]]
    return "/".join(row[1:-1] for row in rows[1:-1])  # the border is all walls.

  def prompt(self, entry: dict) -> str:
    return self.grid(entry) + "="

  def target(self, entry: dict) -> str:
    return str(entry["answer"])

  def to_answer(self, entry: dict, completion: str) -> str | None:
    return _int_answer(completion)

  def key(self, entry: dict) -> str:
    return "maze " + self.grid(entry)


# --- sudoku --------------------------------------------------------------------------------------


class _Sudoku:

  def __init__(self, size: int):
    self.size = size
    self.charset = sorted_charset("123456789"[:size] + "./=")

  def prompt(self, entry: dict) -> str:
    rows = entry["metadata"]["puzzle"]
    return "/".join("".join(str(v) if v else "." for v in row) for row in rows) + "="

  def target(self, entry: dict) -> str:
    return "/".join("".join(str(v) for v in row) for row in entry["metadata"]["solution"])

  def to_answer(self, entry: dict, completion: str) -> str | None:
    rows = first_line(completion).split("/")
    digits = "123456789"[: self.size]
    if len(rows) != self.size or any(len(r) != self.size or set(r) - set(digits) for r in rows):
      return None
    return "\n".join(" ".join(row) for row in rows)

  def key(self, entry: dict) -> str:
    return f"sudoku{self.size} " + self.prompt(entry)


# --- arc_1d --------------------------------------------------------------------------------------


def cells(values) -> str:
  """A 1-D ARC row as text, one character per cell; raises ValueError unless every cell is one digit."""
  text = "".join(str(v) for v in values)
  if len(text) != len(values):
    raise ValueError(f"arc_1d: cell values must be single digits, got {values}.")
  return text


class _Arc1D:
  charset = sorted_charset(_DIGITS + ">;")

  def prompt(self, entry: dict) -> str:
    meta = entry["metadata"]
    examples = "".join(f"{cells(e['input'])}>{cells(e['output'])};" for e in meta["train_examples"])
    return examples + cells(meta["test_example"]["input"]) + ">"

  def target(self, entry: dict) -> str:
    return cells(entry["metadata"]["test_example"]["output"])

  def to_answer(self, entry: dict, completion: str) -> str | None:
    text = first_line(completion)
    if not re.fullmatch(r"[0-9]{1,1000}", text):
      return None
    return " ".join(text)

  def key(self, entry: dict) -> str:
    # The test input alone: the same input never appears in both splits, whatever the examples.
    return "arc_1d " + cells(entry["metadata"]["test_example"]["input"])


# --- arithmetic ----------------------------------------------------------------------------------


class _Expression:
  """basic_arithmetic and chain_sum: the expression without spaces, then '='."""

  def __init__(self, operators: str):
    self.charset = sorted_charset(_DIGITS + operators + "=")

  def prompt(self, entry: dict) -> str:
    return _no_spaces(entry["metadata"]["expression"]) + "="

  def target(self, entry: dict) -> str:
    return str(entry["answer"])

  def to_answer(self, entry: dict, completion: str) -> str | None:
    return _int_answer(completion)

  def key(self, entry: dict) -> str:
    return "expression " + self.prompt(entry)


def ascii_line(text: str) -> str:
  """`text` folded to printable ASCII (accents dropped, other symbols '?') on one line."""
  folded = unicodedata.normalize("NFKD", text)
  folded = "".join(c for c in folded if not unicodedata.combining(c))
  folded = "".join(c if c in _PRINTABLE else "?" for c in " ".join(folded.split()))
  return folded


_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


class _Question:
  """gsm_symbolic: the question as one ASCII line, then '='; the answer number."""

  charset = sorted_charset(_PRINTABLE)

  def prompt(self, entry: dict) -> str:
    return ascii_line(entry["question"]) + "="

  def target(self, entry: dict) -> str:
    return str(entry["answer"])

  def to_answer(self, entry: dict, completion: str) -> str | None:
    text = first_line(completion)
    return text if re.fullmatch(r"-?[0-9]{1,100}(\.[0-9]{1,100})?", text) else None

  def key(self, entry: dict) -> str:
    return "question " + ascii_line(entry["question"])


FORMATS: dict[str, Any] = {
    "countdown": _Countdown(),
    "maze": _Maze(),
    "mini_sudoku": _Sudoku(4),
    "sudoku": _Sudoku(9),
    "arc_1d": _Arc1D(),
    "basic_arithmetic": _Expression("+-*/()"),
    "chain_sum": _Expression("+-"),
    "gsm_symbolic": _Question(),
}

# Answers the scorer must not see (None: every answer is safe).
SAFE_ANSWER: dict[str, Callable[[str], bool]] = {"countdown": countdown_valid}
