"""The pass@k runner's output files: <output_dir>/<task>_<model>.json and .png, and summary.json.

`save_outputs` writes a result atomically at the end of a run (a failed run
leaves none) and rebuilds <output_dir>/summary.json (`build_summary`) from
every result file there, so the summary always covers every finished run.
"""

from __future__ import annotations

import os

from qmotto.evals import plots
from qmotto.utils import files

RESULT_KIND = "qmotto.passk"
# Version 2: the union bound's p_i come from all samples, with an interval
# (union_bound_low/high); version 1 took p_i from the i.i.d. samples alone.
RESULT_VERSION = 2
SUMMARY_NAME = "summary.json"
SUMMARY_FIELDS = (
    "task", "model", "style", "sampler", "k", "pass_at_k", "ci_low", "ci_high", "union_bound",
    "union_bound_low", "union_bound_high", "union_bound_corrected", "union_bound_p_from",
    "samples_saved", "saved_low", "saved_high", "distinct_per_group", "num_problems", "group_size",
    "replications",
)
# How results written before RESULT_VERSION 2 estimated p_i for the union bound.
OLD_BOUND_P_FROM = "iid_samples"


def result_path(output_dir: str, task_name: str, model_name: str) -> str:
  """<output_dir>/<task>_<model>.json."""
  return os.path.join(output_dir, f"{task_name}_{model_name}.json")


def build_summary(output_dir: str) -> list[dict]:
  """Rebuilds <output_dir>/summary.json from every result file there; returns its rows.

  Files that are not results of this runner (other JSON, unreadable files) are skipped.
  Rows of older results lack the bound's interval (None there) and say that
  their p_i came from the i.i.d. samples (union_bound_p_from "iid_samples").
  """
  rows = []
  for path, result in files.load_results(output_dir, RESULT_KIND, skip=(SUMMARY_NAME,)):
    for row in result.get("rows", []):
      summary_row = {field: row.get(field) for field in SUMMARY_FIELDS} | {"file": os.path.basename(path)}
      if summary_row["union_bound_p_from"] is None and summary_row["union_bound"] is not None:
        summary_row["union_bound_p_from"] = OLD_BOUND_P_FROM
      rows.append(summary_row)
  files.write_json(rows, os.path.join(output_dir, SUMMARY_NAME))
  return rows


def save_outputs(result: dict, output_dir: str, *, plot: bool = True) -> dict[str, str]:
  """Writes <task>_<model>.png (if plot) and .json atomically, then rebuilds summary.json.

  Returns:
    {"json": path, "png": path or absent, "summary": path}.
  """
  path = result_path(output_dir, result["task"], result["model"])
  paths = {}
  if plot:
    png = os.path.splitext(path)[0] + ".png"
    plots.plot_passk(result, png)
    paths["png"] = png
  files.write_json(result, path)
  paths["json"] = path
  build_summary(output_dir)
  paths["summary"] = os.path.join(output_dir, SUMMARY_NAME)
  return paths
