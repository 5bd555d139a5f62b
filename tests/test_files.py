"""qmotto.files: atomic writes with ordinary permissions."""

import json
import os
import stat

import numpy as np
import pytest

from qmotto import files


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
