"""Tests of the runner's config checks (qmotto.evals.run_config), through `passk.run` and directly."""

import os

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import passk as passk_config
from qmotto.evals import passk
from qmotto.evals import run_config
from tests.evals import helpers


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("samplers", ("iid", "latice"), "unknown"),
        ("samplers", ("lattice", "sobol"), "must include 'iid'"),
        ("ks", (1, 2, 16), "exceeds config.group_size"),
        ("samplers", ("iid", "sobol"), None),
        ("ks", (4, 2), "strictly increasing"),
        ("group_size", 12, "group_size=12 for sampler 'sobol'"),
        ("style", "prose", "config.style"),
        ("task_options", "{bad", "JSON"),
        ("max_new_tokens", 40, "max_seq_len=32"),
    ],
)
def test_bad_config_raises(checkpoint, tmp_path, field, value, match):
  config = helpers.smoke_config(checkpoint, tmp_path)
  config[field] = value
  if match is None:  # k=3: no valid Sobol sub-group, and no Sobol group of 3 either.
    config.ks, match = (1, 3, 8), "k=3 is not allowed for sampler 'sobol'"
  if field == "group_size":
    config.samplers = ("iid", "sobol")
  with pytest.raises(ValueError, match=match):
    passk.run(config, task=helpers.FakeTask())
  assert not os.path.exists(config.output_dir) or os.listdir(config.output_dir) == []  # no result.


def test_group_sizes():
  assert run_config.group_sizes("stratified", 8, (1, 2, 4, 8)) == [8, 2, 4]
  assert run_config.group_sizes("lattice", 8, (1, 2, 3, 8)) == [8, 3]
  assert run_config.group_sizes("sobol", 8, (1, 2, 4, 8)) == [8]


def test_replications():
  config = ml_collections.ConfigDict(dict(replications=2, iid_replications=0))
  assert run_config.replications(config, "iid") == 2
  config.iid_replications = 5  # more i.i.d. groups sharpen p_i; the coupled samplers keep R.
  assert run_config.replications(config, "iid") == 5
  assert run_config.replications(config, "lattice") == 2


def _with(config, **fields):
  with config.ignore_type():  # a ConfigDict keeps each field's type; these tests change it on purpose.
    for name, value in fields.items():
      config[name] = value
  return config


def test_numbers_may_be_python_numpy_or_jax_scalars():
  config = _with(
      passk_config.get_config("smoke"), num_problems=np.int64(8), group_size=jnp.int32(8), seed=np.uint8(3),
      replications=np.array(2), ks=(np.int64(1), jnp.int32(2), 8), temperature=jnp.float32(0.7),
      top_p=np.float64(0.9), min_p=jnp.float32(0.05), correct_threshold=np.float32(1.0), task="",
  )
  run_config.check_config(config)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("num_problems", "8", "config.num_problems must be an int >= 1, got the string '8'"),
        ("seed", 1.0, "config.seed must be an int >= 0"),
        ("top_k", True, "config.top_k must be an int >= 0"),
        ("group_size", np.arange(2), "config.group_size must be an int >= 1 .a scalar."),
        ("ks", (1, "2", 8), r"config.ks\[1\] must be an int >= 1, got the string '2'"),
        ("ks", "1,2", "config.ks must be a non-empty list of ints >= 1"),
        ("ks", (), "config.ks must be a non-empty list"),
        ("temperature", "0.7", "config.temperature must be a finite float >= 0.0, got the string"),
        ("temperature", float("inf"), "config.temperature must be a finite float"),
        ("top_p", 0.0, r"config.top_p must be a finite float > 0.0 and <= 1.0"),
        ("min_p", 1.0, r"config.min_p must be in \[0, 1\)"),
        ("correct_threshold", None, "config.correct_threshold must be a finite float"),
        ("chat_shots", -1, "config.chat_shots must be an int >= 0"),
    ],
)
def test_numbers_of_other_types_get_a_value_error_naming_the_field(field, value, match):
  config = _with(passk_config.get_config("smoke"), task="", **{field: value})
  with pytest.raises(ValueError, match=match):
    run_config.check_config(config)


def test_unwritable_directories_fail_before_the_model_is_loaded(tmp_path):
  (tmp_path / "file").write_text("in the way")
  for field in ("output_dir", "workdir"):
    config = helpers.smoke_config(str(tmp_path / "no_such_model"), tmp_path)
    config[field] = str(tmp_path / "file" / "sub")
    with pytest.raises(ValueError, match=rf"config.{field}='.*file/sub' is not a writable directory"):
      passk.run(config, task=helpers.FakeTask())  # the model path is bad too, but is not reached.
  run_config.check_directories(helpers.smoke_config(str(tmp_path / "no_such_model"), tmp_path, name="ok"))
  assert os.path.isdir(tmp_path / "ok" / "out") and os.path.isdir(tmp_path / "ok" / "work")
