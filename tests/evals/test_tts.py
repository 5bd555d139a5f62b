"""Tests of the test-time-scaling runner (qmotto.evals.tts): a smoke run, its files, resuming, bad configs.

The fake task and tiny checkpoint are those of the pass@k runner's tests
(tests/evals/helpers.py); the command-line test runs experiments/tts.py on a
tiny random model of a real task, as test_passk.py does for the pass@k runner.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import tts as tts_config_file
from qmotto import metrics
from qmotto import sampling
from qmotto.evals import tts
from qmotto.evals import tts_config
from qmotto.evals import tts_outputs
from qmotto.evals import tts_report
from qmotto.utils import locks
from tests.evals import helpers
from tests.utils import lock_holder

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COUPLED = tts_config_file.COUPLED[0]  # lattice_extensible where qmotto has it, else sobol_code.


def _config(checkpoint, tmp_path, name="run"):
  config = tts_config_file.get_config("smoke")
  config.model = checkpoint
  assert config.samplers == ("iid", COUPLED) and config.group_size == 8 and config.round_size == 2
  config.output_dir = str(tmp_path / name / "out")
  config.workdir = str(tmp_path / name / "work")
  config.progress = False
  return config


def _check_rows_and_files(config, result, paths):
  """The rows of a smoke run, their consistency, and the files they were written to."""
  rows = result["rows"]
  samplers, ks, qs = config.samplers, list(config.ks), list(config.false_positive_rates)
  metric_rows = [r for r in rows if r["metric"] != "first_success"]
  first = [r for r in rows if r["metric"] == "first_success"]
  assert {(r["sampler"], r["metric"], r["k"]) for r in metric_rows} == {
      (s, m, k) for s in samplers for m in ("pass@k", "maj@k", "weighted@k", "bon@k") for k in ks}
  assert {(r["sampler"], r["q"], r["k"]) for r in first} == {(s, q, 8) for s in samplers for q in qs}
  for r in rows:
    assert r["task"] == "fake_add" and r["model"] == "fake_add" and r["num_problems"] == 8
    assert r["ci_low"] <= r["value"] <= r["ci_high"] and 0 <= r["value"] <= 1
    assert (r["saved_vs_iid"] is None) == (r["sampler"] == "iid")
  by_key = {(r["sampler"], r["metric"], r["k"], r["q"]): r for r in rows}
  for s in samplers:
    for q in qs:
      r = by_key[(s, "first_success", 8, q)]
      assert 2 <= r["samples_low"] <= r["expected_samples"] <= r["samples_high"] <= 8
      assert r["expected_tokens"] >= r["expected_samples"]  # every completion has at least one token.
    # With a perfect verifier (q = 0) the first accepted sample is correct whenever one exists: pass@N.
    assert by_key[(s, "first_success", 8, 0.0)]["value"] == pytest.approx(by_key[(s, "pass@k", 8, None)]["value"])
    assert by_key[(s, "pass@k", 1, None)]["value"] == pytest.approx(by_key[(s, "maj@k", 1, None)]["value"])
  # A random model over 12 characters: some answers right, some not.
  assert 0 < result["samplers"]["iid"]["pass_at_1"] < 1
  # The breakdown: both samplers in each class with problems; the coupled one with its difference to iid.
  breakdown = result["majority_breakdown"]
  assert {(r["sampler"], r["problems"]) for r in breakdown} == {(s, c) for s in samplers for c in
                                                                ("mode_right", "mode_wrong")}
  mode = np.array(result["majority_at_infinity"])
  for r in breakdown:
    assert r["num_problems"] == int(np.sum(mode > 0.5 if r["problems"] == "mode_right" else mode < 0.5))
    assert (r["diff_vs_iid"] is None) == (r["sampler"] == "iid" or r["num_problems"] == 0)
  # Files: the JSON holds the rows and the per-problem values they come from; the .npz the samples.
  record = json.load(open(paths["json"]))
  assert record["kind"] == "qmotto.tts" and helpers.same_json(record["rows"], rows) and "arrays" not in record
  maj = np.array(record["per_problem"][COUPLED]["maj@k"])
  ci = metrics.bootstrap_ci(maj, seed=config.seed, num_resamples=config.num_resamples)
  got = [by_key[(COUPLED, "maj@k", k, None)] for k in ks]
  np.testing.assert_allclose([r["value"] for r in got], ci.mean, atol=1e-6)
  with np.load(paths["samples"]) as data:
    again = metrics.majority_at_k(data[f"{COUPLED}.answer_ids"], data[f"{COUPLED}.correct"],
                                  sampler=sampling.get_sampler(COUPLED), k=4)
    assert data["iid.correct"].shape == (8, 2, 8) and data[f"{COUPLED}.correct"].shape == (8, 1, 8)
  np.testing.assert_allclose(again, maj[:, ks.index(4)], atol=1e-6)
  with open(paths["png"], "rb") as f:
    assert f.read(8) == PNG_MAGIC
  summary = json.load(open(paths["summary"]))
  assert len(summary) == len(rows)
  for row in summary:
    assert {"task", "model", "sampler", "metric", "k", "q", "value", "ci_low", "ci_high", "saved_vs_iid"} <= set(row)
    assert (row["q"] is None) == (row["metric"] != "first_success")
  assert "E[samples]" in tts_report.first_success_table(rows)
  assert "mode_wrong" in tts_report.breakdown_table(breakdown)
  assert not [f for f in os.listdir(config.output_dir) if f.startswith((".tmp", ".qmotto"))]


def test_smoke_run_then_resume_after_interruption(checkpoint, tmp_path):
  # One test, so that the second and third runs reuse the first one's compilations.
  ref_config = _config(checkpoint, tmp_path, "reference")
  ref, paths = tts.run_and_write(ref_config, task=helpers.FakeTask())
  _check_rows_and_files(ref_config, ref, paths)
  # An interrupted run resumes from its saved chunks and gives exactly the uninterrupted result.
  config = _config(checkpoint, tmp_path)
  interrupt = helpers.interrupt_at_chunk(3)

  with pytest.raises(KeyboardInterrupt):
    tts.run_and_write(config, task=helpers.FakeTask(), on_chunk=interrupt)
  assert os.listdir(config.output_dir) == []  # no result of an interrupted run.
  result, _ = tts.run_and_write(config, task=helpers.FakeTask())
  assert sum(s["loaded_chunks"] for s in result["samplers"].values()) == 3
  assert sum(s["sampled_chunks"] for s in result["samplers"].values()) == 1
  assert helpers.same_json(result["rows"], ref["rows"]) and helpers.same_json(result["per_problem"], ref["per_problem"])
  assert helpers.same_json(result["majority_breakdown"], ref["majority_breakdown"])


def test_summary_covers_every_result_in_the_folder(tmp_path):
  out = tmp_path / "out"
  row = dict(task="t", sampler="iid", metric="maj@k", k=4, q=None, value=0.5, ci_low=0.4, ci_high=0.6)
  for model in ("a", "b"):
    result = dict(kind=tts_outputs.RESULT_KIND, task="t", model=model, rows=[dict(row, model=model)] * 3)
    paths = tts_outputs.write_result(result, str(out), plot=False)
    assert set(paths) == {"json", "summary"}  # no arrays: no .npz.
  (out / "notes.json").write_text('{"kind": "something else", "rows": [{"sampler": "x"}]}')
  summary = tts_outputs.build_summary(str(out))
  assert len(summary) == 6 and {r["model"] for r in summary} == {"a", "b"}
  assert {r["file"] for r in summary} == {"t_a.json", "t_b.json"}
  assert all(r["value"] == 0.5 and r["saved_vs_iid"] is None for r in summary)


def test_a_second_run_of_the_same_task_and_model_is_refused(checkpoint, tmp_path):
  config = _config(checkpoint, tmp_path)
  calls = []
  with lock_holder.held_by_another_process(config.workdir, lock_file=".qmotto-fake_add_fake_add.lock",
                                           run="test-time scaling fake_add_fake_add") as holder:
    with pytest.raises(locks.DirectoryInUse, match=rf"in use by another run: pid {holder.pid} "):
      tts.run(config, task=helpers.FakeTask(), on_chunk=lambda *a: calls.append(a))
  assert calls == []


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(strategies=("pass", "majority_vote")), r"config.strategies: unknown \['majority_vote'\]; allowed: "),
        (dict(strategies=("pass", "pass")), "each strategy once"),
        (dict(ks=(1, 3, 8)), rf"config.ks: k=3 is not valid for sampler '{COUPLED}' and strategy 'pass' \(pass@k\)"),
        (dict(ks=(1, 2, 16)), "k=16 exceeds config.group_size=8"),
        (dict(round_size=3), r"config.group_size=8 \(the budget N of first_success\) is not a multiple of "
                             r"config.round_size=3"),
        (dict(round_size=16), "is smaller than one round, config.round_size=16"),
        (dict(round_size=0), "config.round_size must be an int >= 1"),
        (dict(samplers=("iid", "lattice")), "config.samplers: 'lattice' is not extensible, so it cannot run "
                                            "strategy 'first_success'"),
        (dict(samplers=("iid", "stratified"), ks=(1, 8)), "'stratified' is not extensible"),
        (dict(false_positive_rates=(0.0, 1.5)),
         r"config.false_positive_rates\[1\] must be a finite float in \[0.0, 1.0\]"),
        (dict(false_positive_rates=()), "config.false_positive_rates must list distinct rates"),
        (dict(breakdown_ks=(16,)), "config.breakdown_ks must be among config.ks"),
        (dict(samplers=("sobol_code",)), "must include 'iid'"),
        (dict(num_subsets=0), "config.num_subsets must be an int >= 1"),
    ],
)
def test_bad_config_raises_before_loading(tmp_path, fields, match):
  config = _config("/nonexistent/checkpoint", tmp_path)  # a config error must come before the model's.
  with config.ignore_type():
    for name, value in fields.items():
      config[name] = value
  with pytest.raises(ValueError, match=match):
    tts.run(config, task=helpers.FakeTask())
  assert not os.path.exists(config.output_dir) and not os.path.exists(config.workdir)


def test_configs_that_pass_the_checks():
  config = tts_config_file.get_config("smoke")
  config.model = "unused"
  tts.check_config(config)
  with config.ignore_type():
    # Without first_success a sampler need not be extensible, and the round size does not matter.
    config.strategies, config.samplers, config.round_size = ("pass", "majority"), ("iid", "lattice"), 3
  tts.check_config(config)
  config.strategies = ("first_success",)  # the default breakdown_ks need "majority": left out, no error.
  config.samplers, config.round_size = ("iid", COUPLED), 8
  tts.check_config(config)
  assert tts_config.k_strategies(config) == ()
  assert set(tts_config.extensible_samplers()) >= {"iid", "sobol", "sobol_code"}
  assert "lattice" not in tts_config.extensible_samplers()


def test_config_variants():
  config = tts_config_file.get_config("task=countdown")
  assert config.model == "checkpoints/countdown" and config.samplers[0] == "iid" and config.num_problems == 300
  assert (config.group_size, config.round_size, tuple(config.false_positive_rates)) == (64, 4, (0.0, 0.05, 0.2))
  assert all(metrics.is_extensible(sampling.get_sampler(s)) for s in config.samplers)
  assert {"sobol_code", "sobol"} <= set(config.samplers)
  assert ("lattice_extensible" in config.samplers) == ("lattice_extensible" in sampling.SAMPLERS)
  chat = tts_config_file.get_config("model=smollm2,task=chain_sum")
  assert chat.model == "smollm2-135m-instruct" and chat.style == "chat" and chat.samplers == ("iid", COUPLED)
  smoke = tts_config_file.get_config("smoke")
  assert smoke.num_problems <= 8 and smoke.output_dir.startswith("/tmp")
  for bad in ("huge", "task=", "model=smollm2", "quick"):
    with pytest.raises(ValueError, match="configs/tts.py"):
      tts_config_file.get_config(bad)


def test_command_line_on_a_real_task(tmp_path):
  name = helpers.save_real_task_checkpoint(tmp_path / "ckpt", max_new_tokens=8)
  out = tmp_path / "out"
  proc = subprocess.run(
      [sys.executable, "experiments/tts.py", "--config=configs/tts.py:smoke", f"--config.model={tmp_path / 'ckpt'}",
       f"--config.output_dir={out}", f"--config.workdir={tmp_path / 'work'}", "--config.num_problems=2",
       "--config.problems_per_call=2", "--config.plot=False"],
      cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  drawn = f"drawn (problems x groups x group size): iid 2 x 2 x 8, {COUPLED} 2 x 1 x 8."
  for text in ("maj@k", "Sampling until verified", "E[samples]", "mode_right", drawn):
    assert text in proc.stdout, (text, proc.stdout[-3000:])
  for suffix in (".json", "_samples.npz"):
    assert (out / f"{name}_ckpt{suffix}").exists()
  summary = json.load(open(out / "summary.json"))
  assert {r["metric"] for r in summary} == {"pass@k", "maj@k", "weighted@k", "bon@k", "first_success"}
