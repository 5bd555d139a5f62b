"""qmotto.utils.files: atomic writes with ordinary permissions; reading a folder of results."""

import json
import os
import signal
import stat
import subprocess
import sys

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


def test_check_writable_makes_the_directory_or_names_the_field(tmp_path):
  path = tmp_path / "a" / "b"
  assert files.check_writable(str(path), "config.output_dir") == str(path)
  assert os.listdir(path) == []  # the probe is gone.
  (tmp_path / "file").write_text("in the way")
  for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
    with pytest.raises(ValueError, match=r"config.workdir='.*file.*' is not a writable directory"):
      files.check_writable(str(bad), "config.workdir")
  with pytest.raises(ValueError, match="config.workdir must be a non-empty path"):
    files.check_writable("", "config.workdir")
  if os.path.isdir("/proc/self") and os.geteuid() != 0:  # pragma: no cover - root may write anywhere.
    with pytest.raises(ValueError, match="config.output_dir"):
      files.check_writable("/proc/self/qmotto", "config.output_dir")


KILLED_WRITER = r"""
import sys, time
from qmotto.utils import files

def write(f):
  f.write("half a result")
  f.flush()
  print("writing", flush=True)
  time.sleep(120)

files.atomic_write(sys.argv[1], write)
"""


def test_a_killed_write_leaves_a_temporary_that_remove_stale_temporaries_removes(tmp_path):
  target = tmp_path / "result.json"
  (tmp_path / "other.json").write_text("{}")
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / ".tmp-inner.json").write_text("")  # subfolders are left alone.
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE,
                            text=True, cwd=repo)
  try:
    assert writer.stdout.readline().strip() == "writing"
  finally:
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdout.close()
  stale = [name for name in os.listdir(tmp_path) if name.startswith(files.TMP_PREFIX)]
  assert len(stale) == 1 and stale[0].endswith(".json") and not target.exists()
  assert files.remove_stale_temporaries(str(tmp_path), min_age_s=3600) == []  # too young to be stale.
  assert files.remove_stale_temporaries(str(tmp_path)) == [str(tmp_path / stale[0])]
  assert sorted(os.listdir(tmp_path)) == ["other.json", "sub"]
  assert os.listdir(tmp_path / "sub") == [".tmp-inner.json"]
  assert files.remove_stale_temporaries(str(tmp_path / "missing")) == []
