"""Task names, options, validation, serialization."""

import dataclasses
import json
import pickle

import pytest

from qmotto import tasks
from qmotto.tasks import registry


def test_names_and_families():
  assert tasks.TASK_NAMES == (
      "countdown", "maze", "mini_sudoku", "sudoku", "arc_1d", "basic_arithmetic", "chain_sum", "gsm_symbolic")
  assert tasks.FAMILIES == ("countdown", "maze", "mini_sudoku", "arc_1d")
  assert set(tasks.CHAT_TASKS) <= set(tasks.TASK_NAMES)
  assert set(tasks.DEFAULT_OPTIONS) == set(tasks.TASK_NAMES)


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_defaults_are_valid_and_fully_resolved(name):
  task = tasks.get_task(name)
  assert task.name == name
  assert tuple(k for k, _ in task.options) == tasks.option_names(name)  # every option, sorted.
  for key, value in tasks.DEFAULT_OPTIONS[name].items():
    assert task.options_dict[key] == value
  assert "seed" not in task.options_dict and "size" not in task.options_dict


def test_overrides_and_rg_defaults():
  task = tasks.get_task("countdown", max_value=20, operators=["+", "-"])
  options = task.options_dict
  assert options["max_value"] == 20
  assert options["operators"] == ("+", "-")  # lists become tuples.
  assert options["min_numbers"] == 3  # DEFAULT_OPTIONS
  assert options["shuffle"] is True  # reasoning-gym's default
  assert tasks.get_task("gsm_symbolic").options_dict == {"difficulty": 1.0}


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_hashable_and_dict_round_trip(name):
  task = tasks.get_task(name)
  assert hash(task) == hash(tasks.get_task(name))
  assert task == tasks.get_task(name)
  assert len({task, tasks.get_task(name)}) == 1
  d = task.to_dict()
  assert set(d) == {"name", "options"}
  assert tasks.Task.from_dict(json.loads(json.dumps(d))) == task
  assert tasks.Task.from_dict(d).to_dict() == d
  assert pickle.loads(pickle.dumps(task)) == task
  with pytest.raises(dataclasses.FrozenInstanceError):
    task.name = "maze"


def test_direct_construction_matches_get_task():
  assert tasks.Task("maze") == tasks.get_task("maze")
  assert tasks.Task("maze", {"max_dist": 4}) == tasks.get_task("maze", max_dist=4)
  assert tasks.Task("maze", (("max_dist", 4),)) == tasks.get_task("maze", max_dist=4)
  assert tasks.get_task("maze", max_dist=4) != tasks.get_task("maze")
  with pytest.raises(ValueError, match="mapping or"):
    tasks.Task("maze", 3)


def test_unknown_task_lists_names():
  with pytest.raises(ValueError, match="countdown, maze, mini_sudoku, sudoku, arc_1d"):
    tasks.get_task("chess")
  with pytest.raises(ValueError, match="Unknown task name"):
    tasks.Task.from_dict({"name": "chess", "options": {}})
  with pytest.raises(ValueError, match="expects"):
    tasks.Task.from_dict({"options": {}})


def test_unknown_option_lists_allowed():
  with pytest.raises(ValueError, match=r"unknown option 'max_numbrs'.*max_numbers.*min_value"):
    tasks.get_task("countdown", max_numbrs=3)
  with pytest.raises(ValueError, match=r"'seed' is managed.*allowed options"):
    tasks.get_task("maze", seed=3)
  with pytest.raises(ValueError, match="'size' is managed"):
    tasks.get_task("maze", size=3)


def test_values_reasoning_gym_rejects():
  with pytest.raises(ValueError, match="max_numbers must be >= min_numbers"):
    tasks.get_task("countdown", min_numbers=4, max_numbers=3)
  with pytest.raises(ValueError, match="min_size must be >= 8"):
    tasks.get_task("arc_1d", min_size=4)
  with pytest.raises(ValueError, match="invalid options"):
    tasks.get_task("maze", min_dist="far")
  with pytest.raises(ValueError, match="hashable"):
    tasks.get_task("countdown", shuffle=[{"a": 1}])


def test_basic_arithmetic_precedence_bug_is_refused():
  with pytest.raises(ValueError, match="left to right"):
    tasks.get_task("basic_arithmetic", allow_parentheses=False, operators=("+", "-", "*"))
  task = tasks.get_task("basic_arithmetic", allow_parentheses=False, operators=("+", "-"))
  for p in task.problems("test", 20):
    assert eval(p.entry["metadata"]["expression"]) == int(p.answer)  # pylint: disable=eval-used


def test_arc_task_names_option():
  assert tasks.get_task("arc_1d").options_dict["task_names"] is None
  rules = ["move_1pix_solid_right", "gravity_one_step_left"]
  task = tasks.get_task("arc_1d", task_names=rules)
  assert task.options_dict["task_names"] == tuple(sorted(rules))
  assert task == tasks.get_task("arc_1d", task_names=rules[::-1] + rules)  # sorted, unique.
  assert tasks.Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task
  problems = task.problems("test", 30)
  assert {p.entry["metadata"]["task_name"] for p in problems} == set(rules)
  with pytest.raises(ValueError, match=r"unknown rules \['fly'\]; allowed: move_1pix_solid_right"):
    tasks.get_task("arc_1d", task_names=["fly"])
  for bad in ("move_1pix_solid_right", [], 3):
    with pytest.raises(ValueError, match="non-empty list of rule names"):
      tasks.get_task("arc_1d", task_names=bad)
  with pytest.raises(ValueError, match="unknown option 'task_names'"):
    tasks.get_task("maze", task_names=rules)


def test_option_names_follow_reasoning_gym_config():
  from reasoning_gym.factory import DATASETS  # pylint: disable=g-import-not-at-top

  for name in tasks.TASK_NAMES:
    fields = {f.name for f in dataclasses.fields(DATASETS[name][1])} - {"seed", "size"}
    assert set(tasks.option_names(name)) == fields | set(registry.EXTRA_OPTIONS.get(name, {}))
