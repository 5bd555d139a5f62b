"""Fixtures of the pass@k runner tests: a tiny checkpoint and one uninterrupted smoke run."""

import pytest

from qmotto.evals import passk
from tests.evals import helpers


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
  return helpers.save_model(tmp_path_factory.mktemp("ckpt") / "fake_add")


@pytest.fixture(scope="session")
def reference(checkpoint, tmp_path_factory):
  """An uninterrupted smoke run, written out: (config, result, paths)."""
  config = helpers.smoke_config(checkpoint, tmp_path_factory.mktemp("reference"))
  result, paths = passk.run_and_save(config, task=helpers.FakeTask())
  return config, result, paths
