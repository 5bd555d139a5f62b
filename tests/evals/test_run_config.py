"""Tests of the runner's config checks (qmotto.evals.run_config), through `passk.run` and directly."""

import os

import ml_collections
import pytest

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
  assert not os.path.exists(config.output_dir)


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
