r"""Trains a small task model for one family; prints and saves the final metrics.

  python experiments/train_task.py --config=configs/train_task.py:task=countdown[,smoke=1]

Resumes from the latest checkpoint in config.workdir. Writes config.output
(the metrics, the config, the command) and copies the training log beside it.
"""

import sys

from absl import app
from ml_collections import config_flags

from qmotto.train import sft
from qmotto.utils import logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/train_task.py:task=<family>.")


def main(argv):
  del argv
  config = _CONFIG.value
  logs.quiet_orbax_logs()
  result = sft.run(config, command=" ".join(["python"] + sys.argv))
  print(sft.format_result(result))
  print(f"Wrote {config.output}")


if __name__ == "__main__":
  app.run(main)
