"""An exclusive lock on a run's directory, so that two runs never share one.

    with locks.DirectoryLock(workdir, name="config.workdir", run="grpo countdown lattice seed 0"):
      ...   # a second run on workdir gets DirectoryInUse at once, naming this one
    with locks.hold_run_directory(workdir, name="config.workdir", run="..."):
      ...   # the same, after removing the `.tmp-*` files killed writes left in workdir
    with locks.output_lock(output_dir, name="config.output_dir", run="..."):
      ...   # write a result and rebuild the folder's summary, one run at a time

The lock is `fcntl.flock` on a lock file inside the directory (by default
`.qmotto.lock`). The operating system drops it when the holding process ends,
however it ends (a SIGKILL, an out-of-memory kill), so a killed run never
leaves a stale lock behind. While it holds the lock, the holder keeps a JSON
record in the lock file (pid, host, command line, start time, the run's
description), which the refusal message of a second run quotes. A clean
release deletes the lock file; one left by a killed run is reused.

Limits: POSIX only (fcntl). On NFS, Linux emulates flock with byte-range
locks, which work across hosts when the server supports locking. A process
that takes the same lock twice is refused too: flock locks belong to the open
file, not the process.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import time
from typing import Iterator

from qmotto.utils import files
from qmotto.utils import numbers

# The lock file of a directory; a directory may have several, named by `lock_file`.
LOCK_NAME = ".qmotto.lock"
# Seconds between attempts of a lock taken with a timeout.
POLL_S = 0.05
# Seconds a refused run waits for the holder's record (written just after its flock).
RECORD_WAIT_S = 0.5
# A results folder's lock, held while a run writes its results there (`output_lock`).
OUTPUT_LOCK_NAME = ".qmotto-output.lock"
# Seconds a run waits for another run's writing of the same results folder.
OUTPUT_WAIT_S = 300.0
# A `.tmp-*` file in a results folder older than this is a killed write's.
STALE_TMP_S = 60.0


class DirectoryInUse(ValueError):
  """A directory's lock is held by another run (or another lock of this process).

  Attributes:
    directory: the locked directory.
    holder: the holder's record (pid, host, command, started, run), or {} if
      it could not be read.
  """

  def __init__(self, message: str, directory: str, holder: dict):
    super().__init__(message)
    self.directory = directory
    self.holder = holder


def describe_holder(holder: dict) -> str:
  """One line naming a lock's holder from its record, e.g. "pid 12 on host h since ..., run ...".

  Args:
    holder: a lock file's record (`DirectoryLock.holder`); {} if unknown.
  """
  if not holder:
    return "a process that has not recorded itself (it may be starting; try again in a moment)"
  this_process = holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()
  parts = [f"pid {holder.get('pid')}" + (" (this process)" if this_process else "")]
  parts.append(f"on host {holder.get('host')}")
  if holder.get("started"):
    parts.append(f"since {holder['started']}")
  text = " ".join(parts)
  if holder.get("run"):
    text += f", run {holder['run']!r}"
  if holder.get("command"):
    text += f", command {holder['command']!r}"
  return text


def _read_record(path: str) -> dict:
  try:
    with open(path) as f:
      text = f.read()
    record = json.loads(text) if text.strip() else {}
  except (OSError, ValueError):
    return {}
  return record if isinstance(record, dict) else {}


class DirectoryLock:
  """An exclusive lock on `directory` for one run; a context manager.

  Args:
    directory: the directory to lock (created if missing).
    name: what the directory is to the user, e.g. "config.workdir"; the
      refusal message names it.
    run: a short description of the run, recorded for the refusal message of
      another run (the command line is recorded too).
    lock_file: the lock file's name inside `directory`: one directory may
      hold several independent locks (e.g. one per task and model).
    timeout_s: 0 refuses at once when the lock is held; otherwise wait up to
      this many seconds for it (for short critical sections such as writing
      a results folder's summary).

  Raises (on entering, or `acquire`):
    DirectoryInUse: a ValueError naming `name`, the directory and the holder.
    ValueError: `directory` cannot be created or the lock file written.
  """

  def __init__(self, directory: str, *, name: str = "directory", run: str = "",
               lock_file: str = LOCK_NAME, timeout_s: float = 0.0):
    if not lock_file or os.sep in lock_file or lock_file in (".", ".."):
      raise ValueError(f"lock_file must be a plain file name, got {lock_file!r}.")
    self.directory = os.path.abspath(os.fspath(directory))
    self.name = name
    self.run = run
    self.path = os.path.join(self.directory, lock_file)
    self.timeout_s = numbers.check_float("timeout_s", timeout_s, minimum=0.0)
    self._fd: int | None = None

  @property
  def held(self) -> bool:
    """Whether this object holds the lock now."""
    return self._fd is not None

  def holder(self) -> dict:
    """The record in the lock file: its current holder's, if the lock is held ({} if none)."""
    return _read_record(self.path)

  def _try_once(self) -> bool:
    """Takes the lock if it is free; False if another holds it."""
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
      os.close(fd)
      if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        return False
      raise
    # The holder before us may have deleted the file between our open and our
    # flock: then we locked a file nobody else will see. Lock the file at the path.
    try:
      same = os.path.samestat(os.fstat(fd), os.stat(self.path))
    except FileNotFoundError:
      same = False
    if not same:
      os.close(fd)
      return self._try_once()
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(sys.argv),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "run": self.run,
        "directory": self.directory,
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    self._fd = fd
    return True

  def acquire(self) -> DirectoryLock:
    """Takes the lock (waiting up to timeout_s); returns self. See the class for what it raises."""
    if self.held:
      raise ValueError(f"{self.name}={self.directory!r}: this DirectoryLock is held already.")
    try:
      os.makedirs(self.directory, exist_ok=True)
      deadline = time.monotonic() + self.timeout_s
      while not self._try_once():
        if time.monotonic() >= deadline:
          raise self._refusal()
        time.sleep(POLL_S)
    except OSError as error:
      raise ValueError(f"{self.name}={self.directory!r}: cannot take the lock {self.path!r}: {error}") from error
    return self

  def _refusal(self) -> DirectoryInUse:
    holder = self.holder()
    waited = time.monotonic() + RECORD_WAIT_S
    while not holder and time.monotonic() < waited:  # the holder writes its record just after its flock.
      time.sleep(POLL_S)
      holder = self.holder()
    waiting = f" (waited {self.timeout_s:g} s)" if self.timeout_s else ""
    return DirectoryInUse(
        f"{self.name}={self.directory!r} is in use by another run{waiting}: {describe_holder(holder)}. "
        f"Two runs on one directory would overwrite each other's files; wait for that run to end, stop "
        f"it, or give this run another {self.name}. (Lock file: {self.path}.)",
        self.directory, holder,
    )

  def release(self) -> None:
    """Deletes the lock file and drops the lock (nothing if not held)."""
    if self._fd is None:
      return
    fd, self._fd = self._fd, None
    try:
      os.remove(self.path)  # before unlocking: a waiter then sees the path gone and retries.
    except OSError:
      pass
    os.close(fd)  # closing the last descriptor drops the flock.

  def __enter__(self) -> DirectoryLock:
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


def read_holder(directory: str, lock_file: str = LOCK_NAME) -> dict | None:
  """Who holds `directory`'s lock: their record ({} if unrecorded), or None if it is free.

  Tries the lock without waiting (and drops it at once if it was free).
  """
  lock = DirectoryLock(directory, lock_file=lock_file)
  try:
    fd = os.open(lock.path, os.O_RDWR)
  except FileNotFoundError:
    return None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    return lock.holder()
  finally:
    os.close(fd)
  return None


@contextlib.contextmanager
def hold_run_directory(directory: str, *, name: str, run: str = "") -> Iterator[DirectoryLock]:
  """Holds `directory`'s lock for a whole run, first removing the `.tmp-*` files killed writes left there.

  Holding the lock, no live run writes in `directory`, so every temporary
  file there is a dead one.

  Args:
    directory: the run's own directory (a trainer's workdir).
    name: what it is to the user, e.g. "config.workdir".
    run: the run's description, for another run's message.

  Raises:
    DirectoryInUse: another run holds `directory`; the message names it.
  """
  with DirectoryLock(directory, name=name, run=run) as lock:
    files.remove_stale_temporaries(lock.directory)
    yield lock


@contextlib.contextmanager
def output_lock(directory: str, *, name: str, run: str = "",
                timeout_s: float = OUTPUT_WAIT_S) -> Iterator[DirectoryLock]:
  """Holds a results folder's lock while a run writes its results and rebuilds the folder's summary.

  Many runs share one results folder (a sweep's runs, the tasks of the pass@k
  runner), so it is not locked for a whole run; only the writing is, waiting
  up to `timeout_s` for another run's writing. Under the lock, `.tmp-*` files
  older than STALE_TMP_S (killed writes) are removed.

  Args:
    directory: the results folder.
    name: what it is to the user, e.g. "config.output_dir".
    run: the run's description, for another run's message.
    timeout_s: the longest wait for the lock.

  Raises:
    DirectoryInUse: still held after `timeout_s`.
  """
  with DirectoryLock(directory, name=name, run=run, lock_file=OUTPUT_LOCK_NAME, timeout_s=timeout_s) as lock:
    files.remove_stale_temporaries(lock.directory, min_age_s=STALE_TMP_S)
    yield lock
