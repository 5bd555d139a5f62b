"""Tests of the toy pass@k runner (qmotto.evals.toy_passk), its config and absl runner."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import passk_toy as passk_toy_config
from qmotto.evals import report
from qmotto.evals import toy
from qmotto.evals import toy_passk
from qmotto.utils import files

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_smoke_run_writes_complete_rows(tmp_path):
  config = passk_toy_config.get_config("smoke")
  config.output = str(tmp_path / "out.json")
  config.samplers = ("iid", "lattice", "stratified")
  result = toy_passk.run(config)
  files.write_json(result, config.output)
  rows = json.load(open(config.output))["rows"]
  assert {(r["sampler"], r["k"]) for r in rows} == {
      (s, k) for s in config.samplers for k in config.ks
  }
  for r in rows:
    for field in ("task", "model", "sampler", "k", "pass_at_k", "ci_low", "ci_high", "union_bound", "samples_saved"):
      assert field in r
    assert r["ci_low"] <= r["pass_at_k"] <= r["ci_high"]
  # The union bound uses the exact p_i: mean_i min(1, k p_i).
  p = toy.make_suite(config.seed, num_problems=config.num_problems, vocab=config.vocab,
                     length=config.length, difficulty=tuple(config.difficulty)).answer_probs()
  for r in rows:
    assert r["union_bound"] == pytest.approx(np.minimum(1, r["k"] * p).mean())
    # Exact p_i: no estimation bias to correct; the interval is the bootstrap over problems.
    assert r["union_bound_p_from"] == "exact" and r["union_bound_samples"] is None
    assert r["union_bound_corrected"] == r["union_bound"]
    assert r["union_bound_low"] <= r["union_bound"] <= r["union_bound_high"]
  table = report.format_table(rows)
  assert "exact p_i" in table
  assert "lattice" in table and "stratified" in table


def test_config_variants():
  assert passk_toy_config.get_config("smoke").num_problems < passk_toy_config.get_config().num_problems
  with pytest.raises(ValueError, match="unknown variant"):
    passk_toy_config.get_config("huge")


def test_runner_command_line(tmp_path):
  out = tmp_path / "cli.json"
  proc = subprocess.run(
      [sys.executable, "experiments/passk_toy.py", "--config=configs/passk_toy.py:smoke",
       f"--config.output={out}", "--config.num_problems=8"],
      cwd=REPO, capture_output=True, text=True, timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "pass@k" in proc.stdout and out.exists()
