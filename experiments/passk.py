r"""pass@k of i.i.d. vs coupled sampling for a model on a reasoning task; prints the table.

  python experiments/passk.py --config=configs/passk.py:task=countdown
  python experiments/passk.py --config=configs/passk.py:model=smollm2,task=chain_sum
See configs/passk.py for the variants and fields.
"""

from absl import app
from ml_collections import config_flags

from qmotto.evals import passk
from qmotto.evals import report

_CONFIG = config_flags.DEFINE_config_file("config", "configs/passk.py", "Experiment config.")


def main(argv):
  del argv
  config = _CONFIG.value
  result, paths = passk.run_and_save(config)
  print(f"{result['task']} / {result['model']} ({result['style']}): {result['num_problems']} problems, "
        f"mean pass@1 {result['mean_pass_at_1']:.3f}; {config.replications} groups of {config.group_size} "
        f"per problem and sampler; {result['seconds']:.0f}s.")
  print(report.format_table(result["rows"], list(config.ks_shown)))
  print("Wrote " + ", ".join(paths.values()))


if __name__ == "__main__":
  app.run(main)
