"""Compact formats: round trips through reasoning-gym's scorer, charsets, garbage."""

import random
import re
import time

import pytest

from qmotto import tasks
from qmotto.tasks import formats

# Problems per task (sudoku generates slowly in reasoning-gym).
N = {"sudoku": 8, "countdown": 100}

GARBAGE = [
    "", " ", "\n", "?", "abc", "=", "/", ">", ";", "-", "((", "+++", "1+", "*3", "9**9**9", "8//2",
    "1/", "12ab", "..//..", "#S.G", "0" * 5000, "9" * 5000 + "1", "\x00\xff", "é", "<answer>",
    "1 2 3 4\n1 2 3 4", "(" * 3000 + "1" + ")" * 3000, "__import__('os')",
]


def _problems(name, n=None):
  return tasks.get_task(name).problems("test", n or N.get(name, 200))


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_compact_target_round_trips_to_full_score(name):
  task = tasks.get_task(name)
  for p in _problems(name):
    target = task.compact_target(p)
    assert "\n" not in target and target == target.strip()
    answer = task.compact_to_answer(p, target)
    assert task.score(p, answer) == 1.0, (p.index, target, answer, p.answer)
    assert task.score_text(p, target, "compact") == 1.0
    assert task.score_text(p, target + "\nleftover", "compact") == 1.0  # first line only.
    assert task.is_correct_text(p, target, "compact")
    assert task.score(p, p.answer) == 1.0


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_charset_covers_prompts_and_targets(name):
  task = tasks.get_task(name)
  charset = task.compact_charset()
  assert charset == "".join(sorted(set(charset)))
  assert all(32 <= ord(c) < 127 for c in charset)
  used = set()
  for p in _problems(name):
    prompt = task.compact_prompt(p)
    used.update(prompt + task.compact_target(p))
    assert prompt.isascii() and "\n" not in prompt
  assert used <= set(charset), sorted(used - set(charset))


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_garbage_scores_zero_and_never_raises(name):
  task = tasks.get_task(name)
  rng = random.Random(0)
  charset = task.compact_charset()
  for p in _problems(name, 5):
    randoms = ["".join(rng.choice(charset) for _ in range(rng.randint(1, 40))) for _ in range(30)]
    for text in GARBAGE + randoms + [None, 3]:
      start = time.time()
      score = task.score_text(p, text, "compact")
      assert 0.0 <= score <= 1.0 and time.time() - start < 1.0
      if text in GARBAGE or text is None or text == 3:
        assert score == 0.0, (text, task.compact_to_answer(p, text))
      chat = task.score_text(p, text, "chat")
      # Random strings can hit a one-digit answer (chain_sum's default), and
      # "000..." is a right answer where it is 0: only other fixed garbage
      # must score below a pass.
      hit = isinstance(text, str) and text.strip().lstrip("0") == p.answer.lstrip("0")
      assert 0.0 <= chat <= 1.0 and (chat < 1.0 or text not in GARBAGE or hit), text
      if isinstance(text, str) and not any(c.isdigit() for c in text):
        assert chat == 0.0, text
    assert task.score(p, None) == 0.0 and task.score(p, "") == 0.0 and task.score(p, "  \n") == 0.0


def test_countdown_format():
  task = tasks.get_task("countdown")
  p = _problems("countdown")[0]
  meta = p.entry["metadata"]
  assert task.compact_prompt(p) == f"{meta['target']}:{','.join(map(str, meta['numbers']))}="
  assert task.compact_target(p) == p.answer.replace(" ", "")
  target = task.compact_target(p)
  assert task.compact_to_answer(p, f"  {target} ") == target
  spaced = re.sub(r"([+\-*/()])", r" \1 ", target)
  assert task.score(p, spaced) == 1.0 and task.compact_to_answer(p, spaced) == target  # spaces don't matter
  assert task.score(p, target[0] + " " + target[1:]) == 0.0 or not target[1].isdigit()  # unless inside numbers.
  assert task.compact_to_answer(p, "-(1+2)*3/-4") == "-(1+2)*3/-4"
  for bad in ("1+", "(1+2", "1+2)", "()", "2**3", "8//2", "1e3", "1.5+2", "x+1", "1 0+2", "(2)(3)"):
    assert task.compact_to_answer(p, bad) is None, bad
  wrong = "+".join(str(n) for n in meta["numbers"]) + "+1"
  assert 0.0 < task.score(p, wrong) < 1.0  # reasoning-gym's partial credit.
  assert not task.is_correct(p, wrong)
  assert task.score(p, "9**9**9") == 0.0 and task.score(p, "__import__('os')") == 0.0


def test_maze_format():
  task = tasks.get_task("maze")
  for p in _problems("maze"):
    meta = p.entry["metadata"]
    grid = meta["grid"]
    assert all(c == meta["wall"] for c in grid[0] + grid[-1] + "".join(r[0] + r[-1] for r in grid))
    prompt = task.compact_prompt(p)
    rows = prompt[:-1].split("/")
    assert prompt.endswith("=") and len(rows) == len(grid) - 2
    assert all(len(r) == len(grid) - 2 for r in rows)
    assert prompt.count("S") == 1 and prompt.count("G") == 1
    assert task.compact_target(p) == p.answer
  p = _problems("maze")[0]
  assert task.compact_to_answer(p, "07") == "7"
  assert task.compact_to_answer(p, "7 steps") is None


@pytest.mark.parametrize("name,size", [("mini_sudoku", 4), ("sudoku", 9)])
def test_sudoku_format(name, size):
  task = tasks.get_task(name)
  p = _problems(name, 3)[0]
  prompt = task.compact_prompt(p)
  assert prompt.endswith("=") and prompt.count("/") == size - 1 and len(prompt) == size * size + size
  blanks = sum(v == 0 for row in p.entry["metadata"]["puzzle"] for v in row)
  assert prompt.count(".") == blanks > 0
  target = task.compact_target(p)
  assert task.compact_to_answer(p, target) == p.answer  # "a b c d\n...".
  assert task.compact_to_answer(p, target[:-1]) is None
  assert task.compact_to_answer(p, target.replace("/", "")) is None
  assert task.compact_to_answer(p, target.replace("1", "0")) is None
  wrong = target.replace("1", "x").replace("2", "1").replace("x", "2")
  assert 0.0 <= task.score_text(p, wrong, "compact") < 1.0


def test_arc_format():
  task = tasks.get_task("arc_1d")
  p = _problems("arc_1d")[0]
  meta = p.entry["metadata"]
  prompt = task.compact_prompt(p)
  assert prompt.count(";") == len(meta["train_examples"]) and prompt.endswith(">")
  assert prompt.split(";")[-1] == "".join(map(str, meta["test_example"]["input"])) + ">"
  assert task.compact_to_answer(p, task.compact_target(p)) == p.answer
  assert task.compact_to_answer(p, "12 3") is None
  with pytest.raises(ValueError, match="single digits"):
    formats.cells([1, 10])


def test_arithmetic_formats():
  basic = tasks.get_task("basic_arithmetic")
  p = _problems("basic_arithmetic")[0]
  prompt = basic.compact_prompt(p)
  assert prompt == p.entry["metadata"]["expression"].replace(" ", "") + "="
  assert eval(prompt[:-1].replace("/", "//")) == int(p.answer)  # pylint: disable=eval-used
  assert basic.compact_to_answer(p, "-012") == "-12"
  chain = tasks.get_task("chain_sum")
  q = _problems("chain_sum")[0]
  assert chain.compact_prompt(q) == q.entry["metadata"]["expression"].replace(" ", "") + "="
  gsm = tasks.get_task("gsm_symbolic")
  g = _problems("gsm_symbolic")[0]
  assert gsm.compact_prompt(g).endswith("=") and gsm.compact_to_answer(g, "12.5") == "12.5"
  assert gsm.compact_to_answer(g, "twelve") is None


def test_ascii_line():
  assert formats.ascii_line("Café costs €3,\n  naïve") == "Cafe costs ?3, naive"
