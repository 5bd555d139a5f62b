r"""Rebuilds a GRPO summary.json from one or more results folders (e.g. one experiment per task family).

  python experiments/grpo_summary.py \
      --results=results/grpo/maze_experiment,results/grpo/mini_sudoku_experiment,results/grpo/arc_1d_experiment \
      --output_dir=results/grpo

Prints the per-(task, sampler) table; writes <output_dir>/summary.json (one row
per run: task, sampler, seed, steps_to_target, ...), summary_by_sampler.json
(means with intervals, paired differences from i.i.d.), summary_sweep.json
(learning-rate sweeps, if any) and a figure for every experiment and task:
summary_<task>.png for the first experiment, summary_<experiment>_<task>.png
for the others (`qmotto.rl.summary.build_summary`, `write_summary`;
`qmotto.rl.figures.save_summary_figures`).
"""

from absl import app
from absl import flags

from qmotto.rl import figures
from qmotto.rl import summary as summary_lib

_RESULTS = flags.DEFINE_list("results", None, "Comma-separated folders of GRPO result files.", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "results/grpo", "Where to write the summary files and plots.")


def main(argv):
  del argv
  summary = summary_lib.build_summary(_RESULTS.value)
  if not summary["rows"]:
    raise app.UsageError(f"--results={','.join(_RESULTS.value)} holds no GRPO result files.")
  paths = list(summary_lib.write_summary(summary, _OUTPUT_DIR.value).values())
  paths += figures.save_summary_figures(summary_lib.load_runs(_RESULTS.value), _OUTPUT_DIR.value)
  print(summary_lib.format_summary(summary))
  sweep = summary_lib.learning_rate_sweep(summary["rows"])
  if sweep:
    print("\n" + summary_lib.format_sweep(sweep))
  print("Wrote " + ", ".join(paths))


if __name__ == "__main__":
  app.run(main)
