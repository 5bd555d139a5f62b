"""Tests of the runner's output files (qmotto.evals.outputs)."""

import json

from qmotto.evals import outputs
from qmotto.utils import files


def test_build_summary(tmp_path):
  row = dict(task="t", model="m", style="compact", sampler="iid", k=1, pass_at_k=0.5, ci_low=0.4,
             ci_high=0.6, union_bound=0.5, samples_saved=0.0, saved_low=0.0, saved_high=0.0,
             distinct_per_group=1.0, num_problems=3, group_size=8, replications=2)
  for name in ("a_m", "b_m"):
    result = dict(kind=outputs.RESULT_KIND, rows=[row | {"task": name[0]}, row | {"task": name[0], "k": 2}])
    files.write_json(result, str(tmp_path / f"{name}.json"))
  files.write_json({"something": "else"}, str(tmp_path / "other.json"))
  (tmp_path / "broken.json").write_text("{")
  rows = outputs.build_summary(str(tmp_path))
  assert [(r["task"], r["k"]) for r in rows] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
  assert json.load(open(tmp_path / "summary.json")) == rows
  assert all(set(outputs.SUMMARY_FIELDS) <= set(r) for r in rows)


def test_result_path():
  assert outputs.result_path("results/passk", "countdown", "countdown") == "results/passk/countdown_countdown.json"
