"""Resuming a trainer from its latest checkpoint, shared by the SFT and GRPO trainers.

    check_same_run(where, meta, task, saved_config, config, RUN_FIELDS)  # or ValueError
    params = uncommitted(restored.model.params)
    resumed = Resumed(state, step, train_seconds, last_eval)

A checkpoint in a workdir is resumed only if it is of the same run: the same
task and the same values of the trainer's RUN_FIELDS (the fields that change
what is computed, not where it is written or how often it is logged).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from qmotto.train import state as state_lib
from qmotto.utils import files


class Resumed(NamedTuple):
  """Where a trainer continues: from a checkpoint, or from scratch (`start_afresh`).

  Attributes:
    state: the TrainState.
    step: the trainer's steps already taken (0 from scratch).
    train_seconds: wall time of the earlier processes of the run.
    last_eval: the held-out metrics saved with the checkpoint (None if none).
  """

  state: state_lib.TrainState
  step: int
  train_seconds: float
  last_eval: dict | None


def start_afresh(state: state_lib.TrainState) -> Resumed:
  """A run with no checkpoint yet: step 0 from `state`."""
  return Resumed(state, 0, 0.0, None)


def check_same_run(where: str, meta: dict, task, saved_config: dict, config, fields: Sequence[str]) -> None:
  """Raises ValueError if a checkpoint (metadata `meta`, its run's config `saved_config`) is of another run.

  Another run: another task, or other values of any of `fields` than `config`
  has. Shared by the SFT and GRPO resumes; `where` names the checkpoint.
  """
  if meta.get("task") != files.to_jsonable(task.to_dict()):
    raise ValueError(f"{where} was trained on task {meta.get('task')}, not {task.to_dict()}; use a fresh workdir.")
  wanted = files.to_jsonable(config.to_dict())
  changed = sorted(name for name in fields if saved_config.get(name) != wanted.get(name))
  if changed:
    raise ValueError(
        f"{where} was trained with other values of {changed} (saved {[saved_config.get(n) for n in changed]}, "
        f"config {[wanted.get(n) for n in changed]}); use a fresh workdir or the saved values."
    )


def uncommitted(tree):
  """`tree` with every array copied through the host.

  orbax returns arrays committed to a device; jitted functions called with
  them compile again for the same shapes (the train step, generate). A host
  round trip gives ordinary uncommitted arrays, as a fresh run has.
  """
  return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), tree)
