"""Tests of the runner's output files (qmotto.evals.outputs)."""

import json

from qmotto.evals import outputs
from qmotto.evals import plots
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


def _row(**fields):
  return dict(task="t", model="m", style="compact", sampler="iid", k=1, pass_at_k=0.5, ci_low=0.4,
              ci_high=0.6, union_bound=0.5, samples_saved=0.0, saved_low=0.0, saved_high=0.0,
              distinct_per_group=1.0, num_problems=3, group_size=8, replications=2) | fields


def test_summary_carries_the_bound_interval_and_marks_old_results(tmp_path):
  new = _row(union_bound_low=0.45, union_bound_high=0.6, union_bound_corrected=0.52,
             union_bound_p_from="all_samples", union_bound_samples=48)
  files.write_json(dict(kind=outputs.RESULT_KIND, version=outputs.RESULT_VERSION, rows=[new]), str(tmp_path / "a.json"))
  files.write_json(dict(kind=outputs.RESULT_KIND, version=1, rows=[_row(task="old")]), str(tmp_path / "b.json"))
  rows = outputs.build_summary(str(tmp_path))
  assert outputs.RESULT_VERSION == 2
  assert {"union_bound_low", "union_bound_high", "union_bound_corrected", "union_bound_p_from"} <= set(
      outputs.SUMMARY_FIELDS)
  assert (rows[0]["union_bound_low"], rows[0]["union_bound_high"], rows[0]["union_bound_p_from"]) == (
      0.45, 0.6, "all_samples")
  # A result of the old code: its p_i came from the i.i.d. samples, and it has no interval.
  assert rows[1]["union_bound_p_from"] == "iid_samples" and rows[1]["union_bound_low"] is None


def _texts(figure):
  texts = [figure.get_suptitle()]
  for ax in figure.axes:
    legend = ax.get_legend()
    if legend is not None:
      texts += [t.get_text() for t in legend.get_texts()]
  return texts


def test_plot_states_its_bands_and_the_bound(tmp_path):
  rows = []
  for sampler, replications in (("iid", 2), ("lattice", 1)):
    for k in (1, 4):
      rows.append(_row(sampler=sampler, k=k, replications=replications, group_size=4, union_bound=0.3 * k,
                       union_bound_low=0.25 * k, union_bound_high=0.35 * k, union_bound_p_from="all_samples",
                       ci_level=0.9, samples_saved=0.1))
  result = dict(task="t", model="m", num_problems=3, config=dict(temperature=1.0), rows=rows)
  texts = _texts(plots.figure_passk(result))
  title = texts[0]
  assert "bands: 90% bootstrap intervals over problems" in title
  assert "iid 2x4, lattice 1x4" in title and "n=" not in title
  assert any("union bound" in t and "biased low" in t for t in texts)
  exact = [r | {"union_bound_p_from": "exact", "ci_level": 0.95} for r in rows]
  texts = _texts(plots.figure_passk(dict(result, rows=exact)))
  assert "bands: 95% bootstrap intervals over problems" in texts[0]
  assert any("exact p_i" in t for t in texts)
  path = plots.plot_passk(result, str(tmp_path / "p.png"))
  assert open(path, "rb").read(4) == b"\x89PNG"
