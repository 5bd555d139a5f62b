"""The test-time-scaling runner's files: <output_dir>/<task>_<model>.json, .png, _samples.npz, summary.json.

`write_result` writes a result atomically at the end of a run (a failed run
leaves none): the JSON (config, rows, the maj@k breakdown and the
per-problem estimates every row is recomputed from), the figure
(`tts_plots`), and the sample arrays behind the estimates as a compressed
.npz (keys "<sampler>.<field>": correct, answered, answer_ids, lengths,
mean_logprob, each [P, R, N]), from which every per-problem estimate can be
recomputed, for other strategies or false-positive rates too. Then
`build_summary` rebuilds <output_dir>/summary.json from every result file
there, so the summary always covers every finished run.
"""

from __future__ import annotations

import os

import numpy as np

from qmotto.evals import outputs
from qmotto.evals import tts_plots
from qmotto.utils import files

RESULT_KIND = "qmotto.tts"
RESULT_VERSION = 1
SUMMARY_NAME = "summary.json"
# The fields of a summary row (None where a row has none: q and the
# first-success fields for the metrics at k, saved_vs_iid for i.i.d.).
SUMMARY_FIELDS = (
    "task", "model", "style", "sampler", "metric", "k", "q", "value", "ci_low", "ci_high", "ci_level",
    "saved_vs_iid", "saved_low", "saved_high", "expected_samples", "samples_low", "samples_high",
    "expected_tokens", "tokens_low", "tokens_high", "tokens_saved_vs_iid", "tokens_saved_low",
    "tokens_saved_high", "round_size", "num_problems", "group_size", "replications",
)


def samples_path(output_dir: str, task_name: str, model_name: str) -> str:
  """<output_dir>/<task>_<model>_samples.npz."""
  return os.path.splitext(outputs.result_path(output_dir, task_name, model_name))[0] + "_samples.npz"


def build_summary(output_dir: str) -> list[dict]:
  """Rebuilds <output_dir>/summary.json from every test-time-scaling result there; returns its rows.

  One row per result row (SUMMARY_FIELDS and the file it came from); files
  that are not results of this runner (other JSON, unreadable files) are
  skipped.
  """
  rows = []
  for path, result in files.load_results(output_dir, RESULT_KIND, skip=(SUMMARY_NAME,)):
    for row in result.get("rows", []):
      rows.append({field: row.get(field) for field in SUMMARY_FIELDS} | {"file": os.path.basename(path)})
  files.write_json(rows, os.path.join(output_dir, SUMMARY_NAME))
  return rows


def write_result(result: dict, output_dir: str, *, plot: bool = True) -> dict[str, str]:
  """Writes <task>_<model>.png (if plot), _samples.npz and .json atomically, then rebuilds summary.json.

  Args:
    result: from `tts.run`; its "arrays" go to the .npz, the rest to the JSON.
    output_dir: the results folder.
    plot: whether to draw the figure.

  Returns:
    {"json": path, "png": path or absent, "samples": path, "summary": path}.
  """
  path = outputs.result_path(output_dir, result["task"], result["model"])
  record = {key: value for key, value in result.items() if key != "arrays"}
  paths = {}
  if plot:
    png = os.path.splitext(path)[0] + ".png"
    tts_plots.plot_tts(record, png)
    paths["png"] = png
  if result.get("arrays"):
    arrays = {f"{name}.{field}": np.asarray(value) for name, fields in result["arrays"].items()
              for field, value in fields.items()}
    npz = samples_path(output_dir, result["task"], result["model"])
    files.atomic_write(npz, lambda f: np.savez_compressed(f, **arrays), mode="wb")
    paths["samples"] = npz
  files.write_json(record, path)
  paths["json"] = path
  build_summary(output_dir)
  paths["summary"] = os.path.join(output_dir, SUMMARY_NAME)
  return paths
