"""Result files written atomically: a reader (or a resumed run) never sees half a file."""

from __future__ import annotations

import glob
import json
import os
import tempfile
from typing import Any, Callable


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
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.splitext(path)[1])
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


def to_jsonable(tree: Any) -> Any:
  """`tree` with NumPy/JAX scalars as Python numbers and anything else unknown as text."""
  return json.loads(json.dumps(tree, default=lambda x: x.item() if hasattr(x, "item") else str(x)))


def write_json(obj: Any, path: str) -> str:
  """Writes `obj` (NumPy scalars allowed) as indented JSON, atomically. Returns path."""
  return atomic_write(path, lambda f: json.dump(to_jsonable(obj), f, indent=1))


class JsonlLog:
  """A run's JSONL log (one JSON object a line, each with a "step"), resumable.

  Opening it keeps only the lines of steps <= `keep_through` (the last
  checkpoint; -1: start afresh): lines written after that checkpoint belong
  to steps the resumed run will redo, and a line cut by the interruption is
  dropped.
  """

  def __init__(self, path: str, keep_through: int):
    self.path = path
    kept = []
    if os.path.exists(path):
      with open(path) as f:
        for line in f:
          try:
            if json.loads(line)["step"] <= keep_through:
              kept.append(line if line.endswith("\n") else line + "\n")
          except (ValueError, KeyError, TypeError):
            continue  # a line cut by the interruption.
    with open(path, "w") as f:
      f.writelines(kept)

  def records(self) -> list[dict]:
    with open(self.path) as f:
      return [json.loads(line) for line in f if line.strip()]

  def last(self, kind: str, field: str):
    """`field` of the last record of `kind` that has it (None if none)."""
    value = None
    for record in self.records():
      if record.get("kind") == kind:
        value = record.get(field, value)
    return value

  def write(self, record: dict) -> None:
    with open(self.path, "a") as f:
      f.write(json.dumps(to_jsonable(record)) + "\n")


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
