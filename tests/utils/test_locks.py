"""qmotto.utils.locks: one run per directory; a second run is refused at once and told who holds it."""

import os
import signal
import socket
import time

import pytest

from qmotto.utils import locks
from tests.utils import lock_holder


def test_a_second_process_is_refused_at_once_naming_the_holder_until_the_holder_is_killed(tmp_path):
  workdir = tmp_path / "work"
  with lock_holder.held_by_another_process(workdir, run="grpo countdown sampler=lattice seed=0") as holder:
    began = time.monotonic()
    with pytest.raises(locks.DirectoryInUse) as refused:
      locks.DirectoryLock(workdir, name="config.workdir", run="the second run").acquire()
    assert time.monotonic() - began < 2.0  # at once, not after a wait.
    message = str(refused.value)
    assert f"pid {holder.pid} on host {socket.gethostname()}" in message
    assert f"config.workdir={str(workdir)!r} is in use by another run" in message
    assert "grpo countdown sampler=lattice seed=0" in message and "command" in message
    assert isinstance(refused.value, ValueError) and refused.value.holder["pid"] == holder.pid
    assert locks.read_holder(workdir)["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
  # The kill left the lock file but not the lock: the next run takes it.
  assert os.path.exists(workdir / locks.LOCK_NAME) and locks.read_holder(workdir) is None
  with locks.DirectoryLock(workdir, name="config.workdir", run="after the kill") as lock:
    assert lock.held and locks.read_holder(workdir)["run"] == "after the kill"
    assert locks.read_holder(workdir)["pid"] == os.getpid()
  assert not os.path.exists(workdir / locks.LOCK_NAME)  # a clean release deletes it.
  assert locks.read_holder(workdir) is None


def test_a_lock_with_a_timeout_waits_for_the_holder(tmp_path):
  with lock_holder.held_by_another_process(tmp_path, lock_file=locks.OUTPUT_LOCK_NAME, hold_s=1.0) as holder:
    began = time.monotonic()
    with locks.output_lock(tmp_path, name="config.output_dir", run="waiting run") as lock:
      assert time.monotonic() - began > 0.3 and lock.holder()["run"] == "waiting run"
    assert holder.wait(timeout=30) == 0


def test_locks_of_one_process_and_of_other_files(tmp_path):
  with locks.DirectoryLock(tmp_path, name="config.workdir"):
    with pytest.raises(locks.DirectoryInUse, match=r"\(this process\)"):
      locks.DirectoryLock(tmp_path, name="config.workdir").acquire()
    with locks.DirectoryLock(tmp_path, lock_file=".qmotto-task_model.lock"):  # another lock of the folder.
      pass
  with locks.DirectoryLock(tmp_path):  # released: free again.
    pass
  with pytest.raises(ValueError, match="lock_file must be a plain file name"):
    locks.DirectoryLock(tmp_path, lock_file="a/b.lock")
  with pytest.raises(ValueError, match="timeout_s"):
    locks.DirectoryLock(tmp_path, timeout_s="1")
  with pytest.raises(ValueError, match="config.workdir=.*cannot take the lock"):
    (tmp_path / "file").write_text("in the way")
    locks.DirectoryLock(tmp_path / "file", name="config.workdir").acquire()


def test_output_lock_removes_only_old_temporaries(tmp_path):
  old, new = tmp_path / ".tmp-old.json", tmp_path / ".tmp-new.json"
  for path in (old, new, tmp_path / "result.json"):
    path.write_text("{}")
  hours_ago = time.time() - 7200
  os.utime(old, (hours_ago, hours_ago))
  with locks.output_lock(tmp_path, name="config.output_dir", run="writer"):
    assert sorted(os.listdir(tmp_path)) == [".qmotto-output.lock", ".tmp-new.json", "result.json"]
  assert sorted(os.listdir(tmp_path)) == [".tmp-new.json", "result.json"]


def test_describe_holder():
  assert "not recorded" in locks.describe_holder({})
  text = locks.describe_holder({"pid": 7, "host": "h", "started": "t", "run": "r", "command": "c"})
  assert text == "pid 7 on host h since t, run 'r', command 'c'"
