"""Seeded, deterministic, disjoint train and test splits."""

import pytest
import reasoning_gym as rg

from qmotto import tasks
from qmotto.tasks import registry
from qmotto.tasks import splits

# Problems per task for the fast checks (sudoku and countdown generate slowly in reasoning-gym).
N_TEST = {"countdown": 100, "mini_sudoku": 200, "sudoku": 8}
# Train problems searched for test questions: as many as about a second allows
# (the slow test searches more).
N_TRAIN = {
    "countdown": 300, "maze": 4000, "mini_sudoku": 1000, "sudoku": 10, "arc_1d": 4000,
    "basic_arithmetic": 5000, "chain_sum": 10000, "gsm_symbolic": 3000,
}
N_TRAIN_SLOW = {
    "countdown": 600, "maze": 12000, "mini_sudoku": 2000, "sudoku": 20, "arc_1d": 12000,
    "basic_arithmetic": 20000, "chain_sum": 20000, "gsm_symbolic": 6000,
}


def _same(a, b):
  return (a.index, a.question, a.answer, a.entry, a.dataset_seed) == (b.index, b.question, b.answer, b.entry, b.dataset_seed)


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_deterministic_and_start_consistent(name):
  task = tasks.get_task(name)
  n = 4 if name == "sudoku" else 40
  first = task.problems("test", n)
  again = tasks.get_task(name).problems("test", n)
  assert len(first) == n and all(_same(a, b) for a, b in zip(first, again))
  fresh = [splits.problem_at.__wrapped__(name, task.options, "test", i) for i in range(min(n, 4))]  # uncached
  assert all(_same(a, b) for a, b in zip(first, fresh))
  assert [p.index for p in first] == list(range(n))
  window = task.problems("test", n // 2, start=n // 2)
  assert all(_same(a, b) for a, b in zip(window, first[n // 2:]))
  train = task.problems("train", 5, start=3000)
  assert [p.index for p in train] == list(range(3000, 3005))
  assert {p.question for p in train}.isdisjoint(p.question for p in first)


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_problems_are_reasoning_gym_items(name):
  """Problem i is item i of create_dataset(seed=dataset_seed); item i is seeded seed + i."""
  task = tasks.get_task(name)
  options = {k: v for k, v in task.options if k not in registry.EXTRA_OPTIONS.get(name, {})}
  for p in task.problems("train", 2, start=5000) + task.problems("test", 2):
    entry = rg.create_dataset(name, seed=p.dataset_seed, size=p.index + 1, **options)[p.index]
    assert (entry["question"], entry["answer"]) == (p.question, p.answer)
    assert (p.dataset_seed - (tasks.TRAIN_SEED if p.index >= 5000 else tasks.TEST_SEED)) % splits.SEED_STRIDE == 0
    single = rg.create_dataset(name, seed=p.dataset_seed + p.index, size=1, **options)[0]
    if name == "gsm_symbolic":
      # gsm_symbolic draws all templates from Random(seed) up front: not seed + i.
      bigger = rg.create_dataset(name, seed=p.dataset_seed, size=2 * p.index + 7, **options)[p.index]
      assert bigger["question"] == p.question  # but any size > index gives the same item.
    else:
      assert (single["question"], single["answer"]) == (p.question, p.answer)


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_no_test_question_in_training(name):
  task = tasks.get_task(name)
  n_test = N_TEST.get(name, 300)
  test = task.problems("test", n_test)
  train = task.problems("train", N_TRAIN[name])
  assert all(tasks.split_of_key(task.problem_key(p)) == "test" for p in test)
  assert all(tasks.split_of_key(task.problem_key(p)) == "train" for p in train)
  for view in (lambda p: p.question, task.compact_prompt, task.problem_key):
    assert {view(p) for p in test}.isdisjoint(view(p) for p in train)
  assert tasks.check_disjoint(task, min(N_TRAIN[name], 500), n_test) == ()


@pytest.mark.slow
@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_no_test_question_in_training_large(name):
  task = tasks.get_task(name)
  assert tasks.check_disjoint(task, N_TRAIN_SLOW[name], N_TEST.get(name, 500)) == ()


def test_seed_disjoint_items_would_overlap():
  """Why splits go by content: tiny mazes repeat across seed-disjoint datasets."""
  task = tasks.get_task("maze", min_grid_size=5, max_grid_size=5, min_dist=1, max_dist=2)
  raw_train = registry.make_dataset(task.name, task.options, tasks.TRAIN_SEED, 2000)
  raw_test = registry.make_dataset(task.name, task.options, tasks.TEST_SEED, 200)

  def keys(ds, n):
    out = set()
    for i in range(n):
      try:
        out.add(task.problem_key(splits.Problem(i, "", "", ds[i])))
      except RuntimeError:  # reasoning-gym occasionally fails on tiny mazes.
        pass
    return out

  assert len(keys(raw_test, 200) & keys(raw_train, 2000)) > 50
  assert tasks.check_disjoint(task, 2000, 200) == ()


def test_seed_ranges_never_meet():
  top = splits.MAX_SPLIT_ITEMS
  assert splits.TRAIN_SEED + top <= splits.TEST_SEED
  assert splits.TEST_SEED + top < 2**31 < splits.SEED_STRIDE


def test_split_of_key_fraction():
  keys = [f"k{i}" for i in range(20000)]
  share = sum(tasks.split_of_key(k) == "test" for k in keys) / len(keys)
  assert abs(share - tasks.TEST_FRACTION) < 0.015
  assert tasks.split_of_key("k1") == tasks.split_of_key("k1")


def test_argument_validation():
  task = tasks.get_task("chain_sum")
  with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\)"):
    task.problems("validation", 3)
  for kwargs in ({"n": -1}, {"n": 2.0}, {"n": 3, "start": -2}, {"n": True}):
    with pytest.raises(ValueError, match="non-negative int"):
      task.problems("test", **kwargs)
  with pytest.raises(ValueError, match="MAX_SPLIT_ITEMS"):
    task.problems("train", 2, start=tasks.MAX_SPLIT_ITEMS - 1)
  assert task.problems("test", 0) == []


def test_tiny_problem_space():
  # chain_sum with 2 terms of 1 digit has 200 problems: both splits still only hold their own.
  task = tasks.get_task("chain_sum", min_terms=2, max_terms=2, min_digits=1, max_digits=1)
  keys = {task.problem_key(p) for p in task.problems("train", 1000)}
  assert 100 < len(keys) <= 200
  test_keys = {task.problem_key(p) for p in task.problems("test", 200)}
  assert test_keys.isdisjoint(keys) and len(test_keys) > 10


def test_no_problem_in_split_raises(monkeypatch):
  monkeypatch.setattr(splits, "split_of_key", lambda key: "train")
  splits.problem_at.cache_clear()
  with pytest.raises(RuntimeError, match="no test problem for index 0 in 200 attempts"):
    tasks.get_task("chain_sum").problems("test", 1)
  splits.problem_at.cache_clear()


def test_generation_failures_raise(monkeypatch):
  task = tasks.get_task("maze", max_dist=3)

  def fail(*args, **kwargs):
    del args, kwargs

    class Broken:

      def __getitem__(self, i):
        raise RuntimeError("no maze")

    return Broken()

  monkeypatch.setattr(splits, "_dataset", fail)
  splits.problem_at.cache_clear()
  with pytest.raises(RuntimeError, match="failed to generate items 8 times; last error: no maze"):
    task.problems("test", 1)
  splits.problem_at.cache_clear()


def test_problems_hash():
  problems = tasks.get_task("chain_sum").problems("test", 5)
  assert len(set(problems)) == 5 and problems[0] in set(problems)


def test_check_disjoint_reports_overlap():
  class FakeTask:

    def problems(self, split, n):
      questions = {"train": ["a", "b", "c"], "test": ["x", "b", "y", "a"]}[split][:n]
      return [splits.Problem(i, q, "", {}) for i, q in enumerate(questions)]

    def compact_prompt(self, p):
      return p.question + "="

    def problem_key(self, p):
      return p.question

  assert tasks.check_disjoint(FakeTask(), 3, 4) == (1, 3)
  assert tasks.check_disjoint(FakeTask(), 1, 4) == (3,)
  assert tasks.check_disjoint(FakeTask(), 3, 1) == ()
