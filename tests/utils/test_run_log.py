"""qmotto.utils.run_log: the JSONL run log keeps the lines through the resumed checkpoint."""

import numpy as np

from qmotto.utils import run_log


def test_jsonl_log_resumes_at_the_checkpoint(tmp_path):
  path = str(tmp_path / "log.jsonl")
  log = run_log.JsonlLog(path, keep_through=-1)
  for step in range(4):
    log.write({"kind": "train", "step": step, "loss": np.float32(step)})
  log.write({"kind": "eval", "step": 3, "acc": 0.5})
  with open(path, "a") as f:
    f.write('{"kind": "train", "st')  # cut by an interruption
  resumed = run_log.JsonlLog(path, keep_through=2)  # the last checkpoint was step 2
  assert [r["step"] for r in resumed.records()] == [0, 1, 2]
  assert resumed.last("train", "loss") == 2.0 and resumed.last("eval", "acc") is None
  assert run_log.JsonlLog(path, keep_through=-1).records() == []
  assert run_log.read_jsonl(path) == []
