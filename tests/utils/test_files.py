"""qmotto.files: atomic writes with ordinary permissions."""

import json
import os
import stat

import numpy as np
import pytest

from qmotto.utils import files


def test_write_json_atomic_and_readable(tmp_path):
  path = tmp_path / "sub" / "r.json"
  files.write_json({"x": np.float32(0.5), "n": np.int64(3), "a": [1, 2]}, str(path))
  assert json.loads(path.read_text()) == {"x": 0.5, "n": 3, "a": [1, 2]}
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # not mkstemp's 0600
  assert os.listdir(tmp_path / "sub") == ["r.json"]


def test_failed_write_leaves_nothing(tmp_path):
  path = tmp_path / "r.json"
  files.write_json({"old": True}, str(path))

  def fail(f):
    f.write("{half")
    raise RuntimeError("interrupted")

  with pytest.raises(RuntimeError):
    files.atomic_write(str(path), fail)
  assert json.loads(path.read_text()) == {"old": True}  # the previous file is intact
  assert os.listdir(tmp_path) == ["r.json"]  # and no temporary is left


def test_jsonl_log_resumes_at_the_checkpoint(tmp_path):
  path = str(tmp_path / "log.jsonl")
  log = files.JsonlLog(path, keep_through=-1)
  for step in range(4):
    log.write({"kind": "train", "step": step, "loss": np.float32(step)})
  log.write({"kind": "eval", "step": 3, "acc": 0.5})
  with open(path, "a") as f:
    f.write('{"kind": "train", "st')  # cut by an interruption
  resumed = files.JsonlLog(path, keep_through=2)  # the last checkpoint was step 2
  assert [r["step"] for r in resumed.records()] == [0, 1, 2]
  assert resumed.last("train", "loss") == 2.0 and resumed.last("eval", "acc") is None
  assert files.JsonlLog(path, keep_through=-1).records() == []
