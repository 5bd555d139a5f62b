"""Chat prompts, answer extraction (each rule) and chat scoring."""

import pytest

from qmotto import tasks


@pytest.mark.parametrize(
    "text,expected",
    [
        # 1. tags: the last complete pair, stripped, inner lines kept.
        ("So <answer> 42 </answer>", "42"),
        ("<answer>1</answer> no wait <ANSWER>2</Answer> done", "2"),
        ("<answer>1 2\n3 4\n</answer>", "1 2\n3 4"),
        ("<answer>1</answer> then <answer>", "1"),
        ("I put it in <answer> tags: <answer>7</answer>", "7"),
        ("<answer>  </answer> Answer: 5", None),
        # 1b. an opening tag without a closing one (stop string "</answer>"): the rest.
        ("Reasoning... <answer> 3+4*5 ", "3+4*5"),
        ("<answer>", None),
        # 1c. only a closing tag (the opening tag was in the prompt): the text before it.
        (" 12 </answer> trailing", "12"),
        # 2. the rest of the line after the last "answer:".
        ("The answer: 5\nFinal Answer : **17**.\nThanks!", "17"),
        ("answer:\n9", "9"),  # nothing on its line: falls through to the last line.
        # 3. the last non-empty line, cleaned.
        ("Let me think.\n\n  `41`.  \n\n", "41"),
        ("", None),
        (" \n\t\n", None),
        ("**\n.", None),
        (None, None),
        (42, None),
    ],
)
def test_extract_answer(text, expected):
  assert tasks.extract_answer(text) == expected


def test_chat_messages():
  task = tasks.get_task("chain_sum")
  p = task.problems("test", 1)[0]
  messages = task.chat_messages(p)
  assert messages == [{"role": "user", "content": p.question.rstrip() + "\n\n" + tasks.ANSWER_INSTRUCTION}]
  assert "<answer>" in tasks.ANSWER_INSTRUCTION and "</answer>" in tasks.ANSWER_INSTRUCTION
  with_system = task.chat_messages(p, system="Be brief.")
  assert with_system[0] == {"role": "system", "content": "Be brief."} and with_system[1] == messages[0]


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_reference_answer_in_tags_scores_one(name):
  task = tasks.get_task(name)
  for p in task.problems("test", 3 if name == "sudoku" else 20):
    assert task.score_text(p, f"Let me think step by step.\n<answer>{p.answer}</answer>", "chat") == 1.0
    assert task.score_text(p, f"<answer>\n{p.answer}\n", "chat") == 1.0
    assert task.is_correct_text(p, f"<answer>{p.answer}</answer>", "chat")
    if "\n" not in p.answer:
      assert task.score_text(p, f"Hmm.\nAnswer: {p.answer}", "chat") == 1.0
    assert task.score_text(p, "I don't know.", "chat") < 1.0


def test_style_is_validated():
  task = tasks.get_task("chain_sum")
  p = task.problems("test", 1)[0]
  with pytest.raises(ValueError, match=r"style must be one of \('compact', 'chat'\)"):
    task.score_text(p, "1", "json")


def test_scorer_errors_give_zero(monkeypatch):
  task = tasks.get_task("chain_sum")
  p = task.problems("test", 1)[0]

  class Broken:

    def score_answer(self, answer, entry):
      raise KeyError("metadata")

  from qmotto.tasks import task as task_module  # pylint: disable=g-import-not-at-top

  monkeypatch.setattr(task_module, "_scoring_dataset", lambda name, options: Broken())
  assert task.score(p, p.answer) == 0.0


def test_chat_messages_with_shots():
  task = tasks.get_task("chain_sum")
  problem = task.problems("test", 1)[0]
  assert task.chat_messages(problem) == task.chat_messages(problem, shots=0)
  messages = task.chat_messages(problem, system="Be brief.", shots=2)
  assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
  examples = task.problems("train", 2)
  for example, (question, answer) in zip(examples, zip(messages[1::2], messages[2::2])):
    assert question["content"].startswith(example.question.rstrip())
    assert answer["content"] == f"<answer>{example.answer}</answer>"
    assert tasks.extract_answer(answer["content"]) == example.answer
  assert messages[-1] == task.chat_messages(problem)[0]
  with pytest.raises(ValueError, match="shots must be an int >= 0"):
    task.chat_messages(problem, shots=-1)
