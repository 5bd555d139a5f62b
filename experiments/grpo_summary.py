r"""Rebuilds a GRPO summary.json from one or more results folders (e.g. one experiment per task family).

  python experiments/grpo_summary.py \
      --results=results/grpo/maze_experiment,results/grpo/countdown_experiment \
      --output=results/grpo/summary.json

Prints the per-(task, sampler) table; writes the summary (`grpo.build_summary`)
and, beside it, summary_<task>.png for every task.
"""

import os

from absl import app
from absl import flags

from qmotto import files
from qmotto.rl import grpo

_RESULTS = flags.DEFINE_list("results", None, "Comma-separated folders of GRPO result files.", required=True)
_OUTPUT = flags.DEFINE_string("output", "results/grpo/summary.json", "Where to write the summary.")


def main(argv):
  del argv
  summary = grpo.build_summary(_RESULTS.value)
  if not summary["rows"]:
    raise app.UsageError(f"--results={','.join(_RESULTS.value)} holds no GRPO result files.")
  files.write_json(summary, _OUTPUT.value)
  paths = [_OUTPUT.value]
  results = grpo.load_results(_RESULTS.value)
  for task in sorted({r["task"] for r in results}):
    runs = [r for r in results if r["task"] == task]
    path = os.path.join(os.path.dirname(_OUTPUT.value), f"summary_{task}.png")
    grpo.save_figure(grpo.figure_runs(runs, title=f"GRPO {task}: {len(runs)} runs"), path)
    paths.append(path)
  print(grpo.format_summary(summary))
  print("Wrote " + ", ".join(paths))


if __name__ == "__main__":
  app.run(main)
