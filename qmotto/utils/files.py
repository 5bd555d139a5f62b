"""Result files written atomically: a reader (or a resumed run) never sees half a file.

    files.write_json(result, "results/run.json")     # NumPy scalars allowed
    for path, result in files.load_results("results", kind="qmotto.grpo"): ...

The resumable JSONL run log is `qmotto.utils.run_log`.
"""

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
