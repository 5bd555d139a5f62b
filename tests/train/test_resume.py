"""Resuming (qmotto.train.resume): a checkpoint of another run is refused, naming what changed;
restored arrays come back uncommitted."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qmotto.train import resume
from qmotto.train import state as state_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from ..fakes import ReverseTask, override  # noqa: E402
from configs import train_task as train_task_config  # noqa: E402


def test_check_same_run_names_the_changed_fields():
  config, other = (train_task_config.get_config("task=countdown,smoke=1") for _ in range(2))
  task = ReverseTask(max_digits=3)
  meta = {"task": task.to_dict()}
  saved = config.to_dict()
  resume.check_same_run("w: checkpoint 3", meta, task, saved, config, ("seed", "batch_size"))
  with pytest.raises(ValueError, match=r"w: checkpoint 3 was trained with other values of \['seed'\] \(saved \[0\], config \[5\]\)"):
    resume.check_same_run("w: checkpoint 3", meta, task, saved, override(other, seed=5), ("seed", "batch_size"))
  with pytest.raises(ValueError, match="w: checkpoint 3 was trained on task .*; use a fresh workdir"):
    resume.check_same_run("w: checkpoint 3", {"task": {"name": "other"}}, task, saved, config, ("seed",))


def test_uncommitted_copies_keep_values_and_drop_the_commitment():
  committed = {"w": jax.device_put(jnp.arange(6.0).reshape(2, 3), jax.devices()[0])}
  assert committed["w"].committed
  copy = resume.uncommitted(committed)
  assert not copy["w"].committed
  np.testing.assert_array_equal(np.asarray(copy["w"]), np.asarray(committed["w"]))


def test_start_afresh():
  state = state_lib.TrainState(jnp.int32(0), {}, ())
  assert resume.start_afresh(state) == resume.Resumed(state, 0, 0.0, None)
