"""Tests of the runner's resumable chunked sampling (qmotto.evals.chunks)."""

import logging
import os
import shutil
import types

import ml_collections
import numpy as np
import pytest

import qmotto
from qmotto.evals import chunks
from qmotto.evals import passk
from qmotto.utils import locks
from tests.evals import helpers
from tests.utils import lock_holder


def test_resume_after_interruption_equals_uninterrupted(reference, checkpoint, tmp_path):
  ref_config, ref, _ = reference
  config = helpers.smoke_config(checkpoint, tmp_path)
  interrupt = helpers.interrupt_at_chunk(3)

  with pytest.raises(KeyboardInterrupt):
    passk.run_and_save(config, task=helpers.FakeTask(), on_chunk=interrupt)
  assert os.listdir(config.output_dir) == []  # checked for writing at the start, and no result file.
  stale = os.path.join(config.output_dir, ".tmp-killed.json")  # a killed write of another run, long ago.
  with open(stale, "w") as f:
    f.write("{half")
  os.utime(stale, (0, 0))
  result, paths = passk.run_and_save(config, task=helpers.FakeTask())
  assert not os.path.exists(stale)  # removed under the results folder's lock.
  assert sorted(os.listdir(config.output_dir)) == ["fake_add_fake_add.json", "fake_add_fake_add.png", "summary.json"]
  assert helpers.same_json(result["rows"], ref["rows"])
  assert result["per_problem_pass_at_k"] == ref["per_problem_pass_at_k"]
  loaded = sum(s["loaded_chunks"] for s in result["samplers"].values())
  assert loaded == 3
  assert os.path.exists(paths["json"])
  # A config change that alters the samples uses a new directory, not stale chunks.
  config.seed = 1
  changed = passk.run(config, task=helpers.FakeTask())
  assert changed["workdir"] != result["workdir"]
  assert sum(s["loaded_chunks"] for s in changed["samplers"].values()) == 0


def _arrays(shape):
  arrays = {name: np.zeros(shape, bool) for name in chunks.CHUNK_KEYS}
  arrays["examples"] = np.array(["a", "b"])
  return arrays


def test_chunk_files_round_trip_and_reject_other_shapes(tmp_path):
  shape = (2, 1, 4)
  path = chunks.chunk_path(str(tmp_path), "lattice", 4, 1, 3)
  assert os.path.basename(path) == "lattice_n4_r1_00003.npz"
  assert chunks.load_chunk(path, shape) is None  # not saved yet.
  chunks.save_chunk(path, _arrays(shape))
  loaded = chunks.load_chunk(path, shape)
  assert loaded["examples"] == ["a", "b"] and all(loaded[name].shape == shape for name in chunks.CHUNK_KEYS)
  assert chunks.load_chunk(path, (2, 1, 8)) is None  # another group size: sampled again.
  with open(path, "wb") as f:
    f.write(b"not a chunk")
  assert chunks.load_chunk(path, shape) is None


def test_chunks_of_other_code_are_not_reused(tmp_path, caplog):
  shape = (2, 1, 4)
  path = chunks.chunk_path(str(tmp_path), "iid", 4, 1, 0)
  chunks.save_chunk(path, _arrays(shape), code="0.0.9+0123456789abcdef")
  with caplog.at_level(logging.WARNING):
    assert chunks.load_chunk(path, shape) is None  # this code's version differs: sampled again.
  assert "made by code version 0.0.9+0123456789abcdef, not this code's" in caplog.text
  assert chunks.load_chunk(path, shape, code="0.0.9+0123456789abcdef") is not None
  np.savez_compressed(path, **_arrays(shape))  # a chunk of the code before versions were recorded.
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    assert chunks.load_chunk(path, shape) is None
  assert "code that recorded no version" in caplog.text


def test_code_version_changes_with_the_code_not_its_comments(tmp_path, monkeypatch):
  version = chunks.code_version()
  assert version == chunks.code_version() and version.startswith(qmotto.__version__ + "+")
  source = tmp_path / "module.py"
  monkeypatch.setattr(chunks, "CODE_SOURCES", (str(source),))  # an absolute path replaces qmotto/'s.
  versions = []
  for text in (
      'def f(x):\n  return x + 1\n',
      '"""A docstring."""\n\n\ndef f(x):  # a comment\n  """Adds one."""\n  return x + 1\n',
      'def f(x):\n  return x + 2\n',
  ):
    source.write_text(text)
    versions.append(chunks.code_version.__wrapped__())  # uncached: the function behind the cache.
  assert versions[0] == versions[1] != versions[2]


def test_a_run_resamples_the_chunks_of_other_code(reference, checkpoint, tmp_path, monkeypatch):
  ref_config, ref, _ = reference
  config = helpers.smoke_config(checkpoint, tmp_path)
  shutil.copytree(ref_config.workdir, config.workdir)
  total = sum(s["loaded_chunks"] + s["sampled_chunks"] for s in ref["samplers"].values())
  same = passk.run(config, task=helpers.FakeTask())  # this code's chunks: all reused.
  assert sum(s["loaded_chunks"] for s in same["samplers"].values()) == total
  monkeypatch.setattr(chunks, "code_version", lambda: "0.0.9+0123456789abcdef")
  other = passk.run(config, task=helpers.FakeTask())  # as if the code had changed since.
  assert sum(s["sampled_chunks"] for s in other["samplers"].values()) == total
  assert other["workdir"] == same["workdir"] and helpers.same_json(other["rows"], ref["rows"])


def test_a_second_run_of_the_same_task_and_model_is_refused_at_once(checkpoint, tmp_path):
  config = helpers.smoke_config(checkpoint, tmp_path)
  calls = []
  with lock_holder.held_by_another_process(config.workdir, lock_file=".qmotto-fake_add_fake_add.lock",
                                           run="pass@k fake_add_fake_add") as holder:
    with pytest.raises(locks.DirectoryInUse, match=rf"config.workdir=.* in use by another run: pid {holder.pid} "):
      passk.run(config, task=helpers.FakeTask(), on_chunk=lambda *a: calls.append(a))
  assert calls == [] and not [d for d in os.listdir(config.workdir) if not d.startswith(".qmotto")]


def test_run_lock_removes_the_temporaries_of_its_chunks_only(tmp_path):
  config = ml_collections.ConfigDict(dict(workdir=str(tmp_path)))
  s = types.SimpleNamespace(task=types.SimpleNamespace(name="fake_add"), model_name="m")
  mine, other = tmp_path / "fake_add_m_0123456789abcdef", tmp_path / "fake_add_m2_0123456789abcdef"
  for directory in (mine, other):
    directory.mkdir()
    (directory / ".tmp-abc.npz").write_bytes(b"half a chunk")
    (directory / "iid_n8_r2_00000.npz").write_bytes(b"")
  with chunks.run_lock(config, s) as lock:
    assert os.path.basename(lock.path) == ".qmotto-fake_add_m.lock"
    assert os.listdir(mine) == ["iid_n8_r2_00000.npz"]
    assert sorted(os.listdir(other)) == [".tmp-abc.npz", "iid_n8_r2_00000.npz"]  # another run's.
  assert not os.path.exists(lock.path)


def test_a_padded_last_chunk_gives_the_samples_of_unpadded_chunks(checkpoint, tmp_path):
  # 6 problems in chunks of 4: the last chunk repeats its last problem (equal
  # group ids) to keep one shape; its samples must equal chunks of 2.
  results = []
  for per_call in (4, 2):
    config = helpers.smoke_config(checkpoint, tmp_path, name=f"per_call_{per_call}")
    config.num_problems, config.problems_per_call = 6, per_call
    results.append(passk.run(config, task=helpers.FakeTask()))
  assert results[0]["per_problem_pass_at_k"] == results[1]["per_problem_pass_at_k"]
  assert helpers.same_json(results[0]["rows"], results[1]["rows"])
