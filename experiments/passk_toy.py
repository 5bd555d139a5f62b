r"""pass@k of i.i.d. vs coupled sampling on the toy suite; prints the table.

  python experiments/passk_toy.py --config=configs/passk_toy.py[:smoke]
"""

from absl import app
from ml_collections import config_flags

from qmotto.evals import report
from qmotto.evals import toy_passk
from qmotto.utils import files

_CONFIG = config_flags.DEFINE_config_file("config", "configs/passk_toy.py", "Experiment config.")


def main(argv):
  del argv
  config = _CONFIG.value
  result = toy_passk.run(config)
  files.write_json(result, config.output)
  print(f"Toy suite: {config.num_problems} problems, mean answer probability "
        f"{result['mean_answer_prob']:.3f}; {config.replications} groups of {config.group_size} "
        "per problem and sampler.")
  print(report.format_table(result["rows"], list(config.ks_shown)))
  print(f"Wrote {config.output}")


if __name__ == "__main__":
  app.run(main)
