"""Tests of what the runner resolves before sampling (qmotto.evals.run_setup): models, tasks, styles."""

import json
import os
import shutil

import pytest

from qmotto.evals import passk
from qmotto.evals import run_setup
from tests.evals import helpers


def test_task_resolution_and_mismatch(checkpoint, tmp_path, monkeypatch):
  helpers.use_fake_tasks(monkeypatch)
  config = helpers.smoke_config(checkpoint, tmp_path)
  # The task comes from the checkpoint's metadata when config.task is empty.
  model, tokenizer, metadata = run_setup.load_model_and_metadata(checkpoint)
  assert run_setup.resolve_task(config, metadata) == helpers.FakeTask()
  config.task = "fake_add"
  assert run_setup.resolve_task(config, metadata) == helpers.FakeTask()
  config.task = "nonexistent"
  with pytest.raises(ValueError, match="unknown task 'nonexistent'"):
    passk.run(config)
  config.task = "fake_add"
  config.task_options = json.dumps({"limit": 5})
  with pytest.raises(ValueError, match="task mismatch"):
    passk.run(config)
  with pytest.raises(ValueError, match="task mismatch"):
    passk.run(helpers.smoke_config(checkpoint, tmp_path), task=helpers.FakeTask(limit=5))


def test_bad_models_raise(checkpoint, tmp_path):
  # A vocabulary without the task's characters.
  narrow = helpers.save_model(tmp_path / "narrow", chars="0123456789")
  with pytest.raises(ValueError, match="lacks"):
    passk.run(helpers.smoke_config(narrow, tmp_path), task=helpers.FakeTask())
  # No task anywhere.
  untasked = helpers.save_model(tmp_path / "untasked", task=None)
  with pytest.raises(ValueError, match="set config.task"):
    passk.run(helpers.smoke_config(untasked, tmp_path))
  # A corrupt checkpoint: the parameter files overwritten.
  corrupt = tmp_path / "corrupt"
  shutil.copytree(checkpoint, corrupt)
  for root, _, files in os.walk(corrupt / "1" / "params"):
    for name in files:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"not a checkpoint")
  with pytest.raises(ValueError, match="config.model=.*corrupt"):
    passk.run(helpers.smoke_config(str(corrupt), tmp_path), task=helpers.FakeTask())
  # A foreign directory, a step folder without qmotto items, a missing path.
  foreign = tmp_path / "foreign"
  foreign.mkdir()
  (foreign / "weights.bin").write_bytes(b"\0" * 16)
  (tmp_path / "steps" / "0" / "something").mkdir(parents=True)
  for path, match in ((foreign, "neither config.json nor orbax"), (tmp_path / "steps", "config.model"),
                      (tmp_path / "missing", "no such file")):
    config = helpers.smoke_config(str(path), tmp_path)
    with pytest.raises(ValueError, match=match):
      passk.run(config, task=helpers.FakeTask())
    assert os.listdir(config.output_dir) == []  # checked for writing at the start; no result.


def test_model_label():
  assert run_setup.model_label("checkpoints/countdown/") == "countdown"
  assert run_setup.model_label("/models/SmolLM2 135M.Q8_0.gguf") == "SmolLM2-135M.Q8_0"
  assert run_setup.model_label("smollm2-135m-instruct") == "smollm2-135m-instruct"
