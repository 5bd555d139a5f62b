"""Tests of the runner's resumable chunked sampling (qmotto.evals.chunks)."""

import os

import numpy as np
import pytest

from qmotto.evals import chunks
from qmotto.evals import passk
from tests.evals import helpers


def test_resume_after_interruption_equals_uninterrupted(reference, checkpoint, tmp_path):
  ref_config, ref, _ = reference
  config = helpers.smoke_config(checkpoint, tmp_path)
  calls = []

  def interrupt(sampler, size, chunk):
    calls.append((sampler, size, chunk))
    if len(calls) == 3:
      raise KeyboardInterrupt("killed midway")

  with pytest.raises(KeyboardInterrupt):
    passk.run_and_save(config, task=helpers.FakeTask(), on_chunk=interrupt)
  assert not os.path.exists(config.output_dir)  # no result file that looks complete.
  result, paths = passk.run_and_save(config, task=helpers.FakeTask())
  assert result["rows"] == ref["rows"]
  assert result["per_problem_pass_at_k"] == ref["per_problem_pass_at_k"]
  loaded = sum(s["loaded_chunks"] for s in result["samplers"].values())
  assert loaded == 3
  assert os.path.exists(paths["json"])
  # A config change that alters the samples uses a new directory, not stale chunks.
  config.seed = 1
  changed = passk.run(config, task=helpers.FakeTask())
  assert changed["workdir"] != result["workdir"]
  assert sum(s["loaded_chunks"] for s in changed["samplers"].values()) == 0


def test_chunk_files_round_trip_and_reject_other_shapes(tmp_path):
  shape = (2, 1, 4)
  arrays = {name: np.zeros(shape, bool) for name in chunks.CHUNK_KEYS}
  arrays["examples"] = np.array(["a", "b"])
  path = chunks.chunk_path(str(tmp_path), "lattice", 4, 1, 3)
  assert os.path.basename(path) == "lattice_n4_r1_00003.npz"
  assert chunks.load_chunk(path, shape) is None  # not saved yet.
  chunks.save_chunk(path, arrays)
  loaded = chunks.load_chunk(path, shape)
  assert loaded["examples"] == ["a", "b"] and all(loaded[name].shape == shape for name in chunks.CHUNK_KEYS)
  assert chunks.load_chunk(path, (2, 1, 8)) is None  # another group size: sampled again.
  with open(path, "wb") as f:
    f.write(b"not a chunk")
  assert chunks.load_chunk(path, shape) is None
