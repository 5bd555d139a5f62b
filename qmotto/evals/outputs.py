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
RESULT_VERSION = 1
SUMMARY_NAME = "summary.json"
SUMMARY_FIELDS = (
    "task", "model", "style", "sampler", "k", "pass_at_k", "ci_low", "ci_high", "union_bound",
    "samples_saved", "saved_low", "saved_high", "distinct_per_group", "num_problems", "group_size",
    "replications",
)


def result_path(output_dir: str, task_name: str, model_name: str) -> str:
  """<output_dir>/<task>_<model>.json."""
  return os.path.join(output_dir, f"{task_name}_{model_name}.json")


def build_summary(output_dir: str) -> list[dict]:
  """Rebuilds <output_dir>/summary.json from every result file there; returns its rows.

  Files that are not results of this runner (other JSON, unreadable files) are skipped.
  """
  rows = []
  for path, result in files.load_results(output_dir, RESULT_KIND, skip=(SUMMARY_NAME,)):
    for row in result.get("rows", []):
      rows.append({field: row.get(field) for field in SUMMARY_FIELDS} | {"file": os.path.basename(path)})
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
