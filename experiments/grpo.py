r"""GRPO with i.i.d. or coupled groups; prints the run's metrics and the summary table.

  python experiments/grpo.py --config=configs/grpo.py:task=countdown,sampler=lattice,seed=0[,smoke]

Resumes from the latest checkpoint in config.workdir. See configs/grpo.py for
the variants, fields and the full comparison.
"""

import sys

from absl import app
from ml_collections import config_flags

from qmotto.rl import grpo
from qmotto.rl import summary
from qmotto.utils import logs

_CONFIG = config_flags.DEFINE_config_file("config", "configs/grpo.py", "configs/grpo.py:task=<family>,sampler=<name>.")


def main(argv):
  del argv
  config = _CONFIG.value
  logs.quiet_orbax_logs()
  result = grpo.run(config, command=" ".join(["python"] + sys.argv))
  m = result["metrics"]
  print(f"{m['task']} / {config.sampler} seed {config.seed}: {m['step']} steps, {m['train_seconds'] / 60:.1f} min "
        f"({m['seconds_per_step']} s/step); held-out pass@1 {m.get('pass@1')}, greedy {m.get('greedy_accuracy')}")
  print(summary.format_summary(summary.build_summary(config.output_dir)))
  print("Wrote " + ", ".join(result["paths"].values()))


if __name__ == "__main__":
  app.run(main)
