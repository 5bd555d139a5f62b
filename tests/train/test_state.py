"""The optimizer shared by the trainers (qmotto.train.state): the schedule, the norm, weight decay on matrices."""

import jax.numpy as jnp
import numpy as np
import pytest

from qmotto.train import state as state_lib

OPT = state_lib.OptimizerConfig(learning_rate=1e-2, warmup_steps=4, num_steps=20, end_lr_fraction=0.1,
                                weight_decay=0.5, grad_clip=1.0, b1=0.9, b2=0.98)


def test_schedule_warms_up_then_decays_to_the_end_fraction():
  schedule = state_lib.learning_rate_schedule(OPT)
  assert float(schedule(0)) == 0.0 and float(schedule(2)) == pytest.approx(5e-3)
  assert float(schedule(4)) == pytest.approx(1e-2) and float(schedule(20)) == pytest.approx(1e-3)


def test_from_config_reads_the_fields_by_name():
  config = {**OPT._asdict(), "seed": 3}
  assert state_lib.OptimizerConfig.from_config(config) == OPT


def test_norm_and_parameter_count():
  tree = {"a": jnp.array([3.0, 0.0]), "b": {"c": jnp.full((2, 2), 2.0)}}
  assert float(state_lib.global_norm(tree)) == pytest.approx(5.0)
  assert state_lib.num_params(tree) == 6


def test_weight_decay_on_matrices_not_vectors():
  params = {"norm": jnp.ones((3,)), "kernel": jnp.ones((3, 3))}
  zeros = {"norm": jnp.zeros((3,)), "kernel": jnp.zeros((3, 3))}
  optimizer = state_lib.make_optimizer(OPT._replace(warmup_steps=0))
  updates, _ = optimizer.update(zeros, optimizer.init(params), params)
  assert np.all(np.asarray(updates["norm"]) == 0.0) and np.all(np.asarray(updates["kernel"]) < 0.0)
