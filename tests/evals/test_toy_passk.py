"""Tests of the toy suite, the pass@k report and the demo runner."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import qmotto
from qmotto.evals import report
from qmotto.evals import toy
from qmotto.evals import toy_passk

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from configs import passk_toy as passk_toy_config  # noqa: E402


def test_answer_probs_match_sampling():
  # 20 problems x 20000 i.i.d. samples: |freq - p| < 5.5 sd per problem
  # (two-sided 3.8e-8, x 20 problems < 1e-6).
  suite = toy.make_suite(3, num_problems=20)
  p = suite.answer_probs()
  tokens = np.asarray(
      qmotto.sample_sequences_batched(
          jax.random.key(0), toy.table_logits_fn(suite.group_tables(np.arange(20))),
          num_groups=20, num_samples=20000, length=suite.length, sampling="iid",
      )
  )
  freq = (tokens == suite.answers[:, None, :]).all(-1).mean(-1)
  sd = np.sqrt(p * (1 - p) / 20000)
  assert (np.abs(freq - p) < 5.5 * sd + 1e-4).all()


def test_suite_is_reproducible_and_validated():
  a, b = toy.make_suite(1, num_problems=4), toy.make_suite(1, num_problems=4)
  np.testing.assert_array_equal(a.logits, b.logits)
  with pytest.raises(ValueError, match="num_problems"):
    toy.make_suite(0, num_problems=0)


def test_smoke_run_writes_complete_rows(tmp_path):
  config = passk_toy_config.get_config("smoke")
  config.output = str(tmp_path / "out.json")
  config.samplers = ("iid", "lattice", "stratified")
  result = toy_passk.run(config)
  toy_passk.write_json(result, config.output)
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
  table = report.format_table(rows)
  assert "lattice" in table and "stratified" in table


def test_report_rejects_sizes_no_group_serves():
  correct = {"iid": np.zeros((3, 2, 8), bool), "stratified": np.zeros((3, 2, 8), bool)}
  with pytest.raises(ValueError, match="no group size"):
    report.passk_rows(correct, [1, 2, 8], seed=0)
  with pytest.raises(ValueError, match="baseline"):
    report.passk_rows({"lattice": np.zeros((3, 2, 8), bool)}, [1], seed=0)


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


def test_savings_markdown():
  def row(sampler, k, p, saved, low, high):
    return dict(task="t", model="m", num_problems=9, sampler=sampler, k=k, pass_at_k=p,
                samples_saved=saved, saved_low=low, saved_high=high)

  rows = [row("iid", 16, 0.5, 0.0, 0.0, 0.0), row("lattice", 16, 0.6, 0.3, 0.2, 0.4),
          row("iid", 64, 0.8, 0.0, 0.0, 0.0), row("lattice", 64, 0.9, 0.4, -np.inf, 0.5)]
  lines = report.savings_markdown(rows, [16, 64]).splitlines()
  assert lines[0] == ("| task | model | problems | sampler | iid pass@16 | saved at k=16 | iid pass@64 | "
                      "saved at k=64 |")
  assert lines[2] == "| t | m | 9 | lattice | 0.500 | +30% [+20%, +40%] | 0.800 | +40% [-inf, +50%] |"
  assert len(lines) == 3  # the baseline gets no row of its own
