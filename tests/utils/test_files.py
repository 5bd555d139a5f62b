"""qmotto.utils.files: atomic writes with ordinary permissions; reading a folder of results."""

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


def test_load_results_skips_other_files(tmp_path):
  files.write_json({"kind": "a", "x": 1}, str(tmp_path / "one.json"))
  files.write_json({"kind": "b"}, str(tmp_path / "other.json"))
  files.write_json({"kind": "a", "x": 2}, str(tmp_path / "summary.json"))
  (tmp_path / "broken.json").write_text("{half")
  found = files.load_results(str(tmp_path), "a", skip=("summary.json",))
  assert found == [(str(tmp_path / "one.json"), {"kind": "a", "x": 1})]
