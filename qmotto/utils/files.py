"""Result files written atomically: a reader (or a resumed run) never sees half a file.

    files.write_json(result, "results/run.json")     # NumPy scalars allowed
    for path, result in files.load_results("results", kind="qmotto.grpo"): ...
    files.check_writable(config.output_dir, "config.output_dir")   # at a run's start
    files.remove_stale_temporaries(workdir)          # under the run's lock (`locks`)

An atomic write goes through a temporary file `.tmp-*` beside its target; a
process killed during the write leaves it behind, and a run removes those of
its directories at its start, holding the directory's lock
(`qmotto.utils.locks`) so that no live writer's temporary is removed.

The resumable JSONL run log is `qmotto.utils.run_log`.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from typing import Any, Callable

from absl import logging

# The prefix of atomic_write's temporary files (and of check_writable's probe).
TMP_PREFIX = ".tmp-"


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def atomic_write(path: str, write: Callable[[Any], None], mode: str = "w") -> str:
  """Calls write(f) on a temporary file beside `path`, then renames it to `path`.

  The file gets the permissions an ordinary `open` would give it (0666 minus
  the umask), not mkstemp's 0600. Returns path.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=TMP_PREFIX, suffix=os.path.splitext(path)[1])
  try:
    with os.fdopen(fd, mode) as f:
      write(f)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def check_writable(directory: str, name: str) -> str:
  """Creates `directory` if needed and writes and removes a probe file there; returns its absolute path.

  A run calls it at its start for every directory it will write, so that a
  path it cannot write fails before the compute, not after it.

  Args:
    directory: the directory to check.
    name: what it is to the user (e.g. "config.output_dir"), for the message.

  Raises:
    ValueError: naming `name` and the path, when the directory cannot be
      created or written (a read-only file system, no permission, a file in
      the way).
  """
  if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
    raise ValueError(f"{name} must be a non-empty path, got {directory!r}.")
  path = os.path.abspath(os.fspath(directory))
  try:
    os.makedirs(path, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=path, prefix=TMP_PREFIX + "probe-")
    try:
      os.write(fd, b"probe")
    finally:
      os.close(fd)
      os.remove(probe)
  except OSError as error:
    raise ValueError(f"{name}={os.fspath(directory)!r} is not a writable directory ({path}): {error}") from error
  return path


def remove_stale_temporaries(directory: str, *, min_age_s: float = 0.0) -> list[str]:
  """Removes the temporary files `.tmp-*` left in `directory` (not its subfolders) by killed writes.

  Call it only while no other process writes in `directory`, i.e. holding
  its lock (`qmotto.utils.locks.DirectoryLock`); `min_age_s` spares files
  younger than that, for folders that writers without the lock may share.

  Returns:
    The removed paths, sorted (none if `directory` does not exist); a
    warning in the log says how many.
  """
  if not os.path.isdir(directory):
    return []
  now = time.time()
  removed = []
  for entry in os.scandir(directory):
    if not entry.name.startswith(TMP_PREFIX) or not entry.is_file(follow_symlinks=False):
      continue
    try:
      if now - entry.stat(follow_symlinks=False).st_mtime < min_age_s:
        continue
      os.remove(entry.path)
    except FileNotFoundError:
      continue  # removed meanwhile.
    removed.append(entry.path)
  if removed:
    logging.warning("%s: removed %d temporary files left by a killed run.", directory, len(removed))
  return sorted(removed)


def to_jsonable(tree: Any) -> Any:
  """`tree` with NumPy/JAX scalars as Python numbers and anything else unknown as text."""
  return json.loads(json.dumps(tree, default=lambda x: x.item() if hasattr(x, "item") else str(x)))


def write_json(obj: Any, path: str) -> str:
  """Writes `obj` (NumPy scalars allowed) as indented JSON, atomically. Returns path."""
  return atomic_write(path, lambda f: json.dump(to_jsonable(obj), f, indent=1))


def load_results(directory: str, kind: str, skip: tuple[str, ...] = ()) -> list[tuple[str, dict]]:
  """(path, result) for every JSON file in `directory` whose "kind" is `kind`, by path.

  Files named in `skip` (e.g. the summary itself), unreadable files and JSON
  of another kind are passed over, so a results folder may hold other files.
  """
  found = []
  for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
    if os.path.basename(path) in skip:
      continue
    try:
      with open(path) as f:
        result = json.load(f)
    except (OSError, ValueError):
      continue
    if isinstance(result, dict) and result.get("kind") == kind:
      found.append((path, result))
  return found
