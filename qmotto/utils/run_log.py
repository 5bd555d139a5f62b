"""A training run's JSONL log (one JSON object a line, each with a "step"), resumable.

    log = run_log.JsonlLog("workdir/train_log.jsonl", keep_through=last_checkpoint_step)
    log.write({"kind": "train", "step": 10, "loss": 0.5})
    records = run_log.read_jsonl("workdir/train_log.jsonl")
"""

from __future__ import annotations

import json
import os

from qmotto.utils import files


def read_jsonl(path: str) -> list[dict]:
  """The records of a JSONL file (blank lines skipped)."""
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


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
    return read_jsonl(self.path)

  def last(self, kind: str, field: str):
    """`field` of the last record of `kind` that has it (None if none)."""
    value = None
    for record in self.records():
      if record.get("kind") == kind:
        value = record.get(field, value)
    return value

  def write(self, record: dict) -> None:
    """Appends `record` (NumPy scalars allowed) as one line."""
    with open(self.path, "a") as f:
      f.write(json.dumps(files.to_jsonable(record)) + "\n")
