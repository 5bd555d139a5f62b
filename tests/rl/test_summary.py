"""The GRPO summary across runs (qmotto.rl.summary): steps to target against i.i.d., several folders,
and the summary runner (experiments/grpo_summary.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from qmotto.rl import summary as summary_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fake_result(task, sampler, seed, curve, target=0.0, **config):
  log = [{"kind": "eval", "step": 10 * i, "pass@1": v} for i, v in enumerate(curve)]
  log += [{"kind": "train", "step": 10 * i + 10, "zero_variance": 0.5, "distinct": 3.0, "reward": v}
          for i, v in enumerate(curve)]
  return {"kind": summary_lib.RESULT_KIND, "task": task, "sampler": sampler, "seed": seed, "log": log,
          "config": {"num_steps": 10 * (len(curve) - 1), "eval_every": 10, "target": target, "target_metric": "pass@1",
                     "sampler": sampler, "batch_size": 4, "group_size": 8, **config}}


def test_summary_steps_to_target_against_iid(tmp_path):
  runs = [
      _fake_result("t", "iid", 0, [0.1, 0.2, 0.3, 0.4]), _fake_result("t", "iid", 1, [0.1, 0.2, 0.3, 0.6]),
      _fake_result("t", "lattice", 0, [0.1, 0.5, 0.5, 0.5]), _fake_result("t", "lattice", 1, [0.1, 0.2, 0.2, 0.2]),
  ]
  for r in runs:
    (tmp_path / f"{summary_lib.result_name(r['task'], summary_lib.run_arm(r['config']), r['seed'])}.json").write_text(
        json.dumps(r))
  summary = summary_lib.build_summary(str(tmp_path))
  rows = {(r["sampler"], r["seed"]): r for r in summary["rows"]}
  assert all(r["target"] == pytest.approx(0.5) for r in rows.values())  # mean final i.i.d. pass@1.
  assert rows["iid", 0]["steps_to_target"] is None and rows["iid", 1]["steps_to_target"] == 30
  assert rows["lattice", 0]["steps_to_target"] == 10 and rows["lattice", 1]["steps_to_target"] is None
  agg = {a["sampler"]: a for a in summary["aggregate"]}
  assert agg["iid"]["reached"] == 1 and agg["iid"]["censored"] == 1 and agg["iid"]["mean_steps"] == 30
  assert agg["lattice"]["mean_steps"] == 20 and agg["lattice"]["steps_saved_vs_iid"] == pytest.approx(1 / 3)
  assert agg["lattice"]["final"]["mean"] == pytest.approx(0.35) and agg["iid"]["mean_eval"]["mean"] == pytest.approx(1 / 3)
  assert rows["lattice", 0]["mean_eval"] == pytest.approx(0.5)
  # Per seed, lattice - iid: steps 10 - 30 (seed 0 iid unreached: 30), 30 - 30; curves 0.5 - 0.3, 0.2 - 0.3667.
  paired = agg["lattice"]["paired_vs_iid"]
  assert agg["iid"]["paired_vs_iid"] is None and paired["seeds"] == 2
  assert paired["steps_diff"]["mean"] == pytest.approx(-10.0) and paired["steps_diff"]["ci_low"] < -10.0
  assert paired["mean_eval_diff"]["mean"] == pytest.approx((0.2 - 1 / 6) / 2)
  assert "lattice" in summary_lib.format_summary(summary)
  assert summary_lib.steps_to_target(runs[0]["log"], 0.15) == 10 and summary_lib.steps_to_target(runs[0]["log"], 0.9) is None


def _write_results(folder, runs):
  folder.mkdir(parents=True, exist_ok=True)
  for r in runs:
    (folder / f"{summary_lib.result_name(r['task'], summary_lib.run_arm(r['config']), r['seed'])}.json").write_text(
        json.dumps(r))


def test_summary_over_several_folders_keeps_each_task_target(tmp_path):
  _write_results(tmp_path / "a", [_fake_result("a", "iid", 0, [0.1, 0.3], target=0.25),
                                  _fake_result("a", "lattice", 0, [0.3, 0.3], target=0.25)])
  _write_results(tmp_path / "b", [_fake_result("b", "iid", 0, [0.5, 0.6, 0.7], target=0.65)])
  summary = summary_lib.build_summary([str(tmp_path / "a"), str(tmp_path / "b")])
  rows = {(r["task"], r["sampler"]): r for r in summary["rows"]}
  assert rows["a", "iid"]["steps_to_target"] == 10 and rows["a", "lattice"]["steps_to_target"] == 0
  assert rows["b", "iid"]["target"] == 0.65 and rows["b", "iid"]["steps_to_target"] == 20
  assert rows["b", "iid"]["results_dir"] == str(tmp_path / "b")
  assert summary_lib.build_summary(str(tmp_path / "a"))["rows"] == summary["rows"][:2]

  _write_results(tmp_path / "c", [_fake_result("a", "iid", 0, [0.1])])
  with pytest.raises(ValueError, match=r"both results of \(experiment, task, arm, seed\) = \('grpo1', 'a', 'iid', 0\)"):
    summary_lib.build_summary([str(tmp_path / "a"), str(tmp_path / "c")])
  _write_results(tmp_path / "d", [_fake_result("a", "stratified", 0, [0.1, 0.2], target=0.5)])
  with pytest.raises(ValueError, match="the grpo1 a runs were given different config.target"):
    summary_lib.build_summary([str(tmp_path / "a"), str(tmp_path / "d")])


def test_summary_runner_writes_one_summary_of_several_folders(tmp_path):
  _write_results(tmp_path / "a", [_fake_result("a", "iid", 0, [0.1, 0.3], target=0.25)])
  _write_results(tmp_path / "b", [_fake_result("b", "lattice", 1, [0.5, 0.6, 0.7], target=0.65)])
  _write_results(tmp_path / "c", [_fake_result("b", "iid", 1, [0.5, 0.7], target=0.65, experiment="grpo2")])
  out = tmp_path / "all"
  proc = subprocess.run(
      [sys.executable, "experiments/grpo_summary.py", f"--results={tmp_path / 'a'},{tmp_path / 'b'},{tmp_path / 'c'}",
       f"--output_dir={out}"],
      cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = json.loads((out / summary_lib.SUMMARY_NAME).read_text())  # the format: a list of per-run rows.
  assert [(r["task"], r["sampler"], r["seed"], r["steps_to_target"]) for r in rows] == [
      ("a", "iid", 0, 10), ("b", "lattice", 1, 20), ("b", "iid", 1, 10)]
  by_sampler = json.loads((out / summary_lib.AGGREGATE_NAME).read_text())
  assert [(a["task"], a["sampler"], a["mean_steps"]) for a in by_sampler] == [
      ("a", "iid", 10.0), ("b", "lattice", 20.0), ("b", "iid", 10.0)]
  # One figure per experiment and task: the first experiment's keep their names.
  assert sorted(p.name for p in out.glob("*.png")) == ["summary_a.png", "summary_b.png", "summary_grpo2_b.png"]
  assert "lattice" in proc.stdout



def _with_samples(result, per_step):
  """The result with "samples_drawn" in its train records (one record per 10 steps: a mean per step)."""
  for record in result["log"]:
    if record["kind"] == "train":
      record["samples_drawn"] = per_step
  return result


def test_second_experiment_arms_moving_average_and_samples(tmp_path):
  exp2 = dict(experiment="grpo2", group_size=8)
  curves = {  # pass@1 at steps 0, 10, 20, 30, 40.
      ("iid", 0): [0.1, 0.3, 0.2, 0.3, 0.4], ("iid", 1): [0.1, 0.2, 0.3, 0.4, 0.5],
      ("lattice", 0): [0.1, 0.5, 0.3, 0.4, 0.5], ("lattice", 1): [0.1, 0.3, 0.4, 0.5, 0.5],
  }
  runs = [_with_samples(_fake_result("t", s, seed, c, target=0.35, **exp2), 32.0) for (s, seed), c in curves.items()]
  dynamic = _with_samples(_fake_result("t", "iid", 0, [0.1, 0.3, 0.4, 0.4, 0.4], target=0.35, dynamic_sampling=True,
                                       **exp2), 80.0)
  first = _fake_result("t", "iid", 0, [0.1, 0.2, 0.3, 0.4, 0.5], target=0.35)  # the first experiment: no samples_drawn.
  _write_results(tmp_path, runs + [dynamic, first])
  summary = summary_lib.build_summary(str(tmp_path))
  rows = {(r["experiment"], r["arm"], r["seed"]): r for r in summary["rows"]}
  assert set(rows) == {("grpo2", "iid_G8", 0), ("grpo2", "iid_G8", 1), ("grpo2", "lattice_G8", 0),
                       ("grpo2", "lattice_G8", 1), ("grpo2", "iid+dynamic_G8", 0), ("grpo1", "iid", 0)}
  lattice0 = rows["grpo2", "lattice_G8", 0]
  # One evaluation at 0.5 (step 10) reaches 0.35; the trailing mean of three first does at step 30 (0.4).
  assert lattice0["steps_to_target"] == 10 and lattice0["steps_to_target_ma"] == 30
  assert lattice0["samples_to_target"] == 320 and lattice0["samples_to_target_ma"] == 960
  assert rows["grpo2", "iid+dynamic_G8", 0]["samples_to_target_ma"] == 80 * 30  # ma (0.3 + 0.4 + 0.4) / 3 at 30.
  assert rows["grpo1", "iid", 0]["samples_to_target"] == 4 * 8 * 30  # B * G per step without the field.
  iid = {a["arm"]: a for a in summary["aggregate"] if a["experiment"] == "grpo2"}
  paired = iid["lattice_G8"]["paired_vs_iid"]
  assert paired["baseline"] == "iid_G8" and iid["iid+dynamic_G8"]["paired_vs_iid"]["baseline"] == "iid_G8"
  mine = [rows["grpo2", "lattice_G8", s]["steps_to_target_ma"] for s in (0, 1)]
  base = [rows["grpo2", "iid_G8", s]["steps_to_target_ma"] or 40 for s in (0, 1)]
  assert paired["steps_ma_ratio"]["mean"] == pytest.approx(sum(mine) / sum(base))
  assert paired["steps_ma_ratio"]["ci_low"] <= paired["steps_ma_ratio"]["mean"] <= paired["steps_ma_ratio"]["ci_high"]
  assert "lattice_G8" in summary_lib.format_summary(summary)


def test_learning_rate_sweep_picks_the_largest_area_per_arm(tmp_path):
  curves = {  # (sampler, lr) -> pass@1 at steps 0, 10, 20: area = mean of the last two.
      ("iid", 1e-4): [0.1, 0.2, 0.3], ("iid", 3e-4): [0.1, 0.3, 0.4], ("iid", 1e-3): [0.1, 0.3, 0.2],
      ("lattice", 1e-4): [0.1, 0.4, 0.4], ("lattice", 3e-4): [0.1, 0.4, 0.4],  # a tie: the smaller lr.
  }
  for (sampler, lr), curve in curves.items():
    _write_results(tmp_path / f"lr{lr}", [_fake_result("t", sampler, 100, curve, experiment=f"grpo2_sweep_lr{lr}",
                                                       learning_rate=lr)])
  main = _fake_result("t", "iid", 0, [0.1, 0.9, 0.9], experiment="grpo2", learning_rate=1e-3)  # not a sweep run.
  _write_results(tmp_path / "main", [main])
  summary = summary_lib.build_summary([str(p) for p in sorted(tmp_path.iterdir())])
  sweep = summary_lib.learning_rate_sweep(summary["rows"])
  table = {(t["arm"], t["learning_rate"]): t for t in sweep}
  assert len(sweep) == 5 and {t["experiment"] for t in sweep} == {"grpo2"}
  assert table["iid_G8", 3e-4]["mean_eval"] == pytest.approx(0.35)
  assert [k for k, t in table.items() if t["best"]] == [("iid_G8", 3e-4), ("lattice_G8", 1e-4)]
  paths = summary_lib.write_summary(summary, str(tmp_path))
  assert json.load(open(paths["summary_sweep"])) == sweep
  assert "lattice_G8" in summary_lib.format_sweep(sweep)


def test_paired_power_against_the_normal_approximation_and_a_simulation():
  import scipy.stats

  # The first experiment's maze numbers (EXPERIMENT2.md, "Power"): sd 11.4, 8 seeds, an effect of -13 steps.
  diffs = np.array([0, 0, 5, 5, -30, 0, -5, 5], np.float64)
  power = summary_lib.paired_power(diffs, effect=-13.0)
  assert power["seeds"] == 8 and power["sd"] == pytest.approx(diffs.std(ddof=1))
  # A known-variance z-test bounds the t-test's power from above; the t-test's is a little lower.
  z_power = scipy.stats.norm.sf(1.96 - 13.0 / (power["sd"] / np.sqrt(8)))
  assert 0.6 < power["power"] < z_power
  # Simulated paired t-tests with that sd and effect reject as often as the formula says
  # (20000 draws: the binomial sd of the rate is <= 0.0036; 0.02 is 5.5 sd).
  rng = np.random.default_rng(0)
  draws = rng.normal(-13.0, power["sd"], size=(20000, 8))
  t = draws.mean(axis=1) / (draws.std(axis=1, ddof=1) / np.sqrt(8))
  assert np.mean(np.abs(t) > scipy.stats.t.ppf(0.975, 7)) == pytest.approx(power["power"], abs=0.02)
  # The detectable difference has (about) 80% power by the same formula.
  assert summary_lib.paired_power(diffs, effect=power["detectable"])["power"] == pytest.approx(0.8, abs=0.02)
  assert np.isnan(summary_lib.paired_power([1.0, 1.0], effect=1.0)["power"])  # sd 0: nothing to say.
