r"""Test-time scaling of i.i.d. vs coupled sampling for a model on a reasoning task; prints the tables.

  python experiments/tts.py --config=configs/tts.py:task=countdown
  python experiments/tts.py --config=configs/tts.py:model=smollm2,task=chain_sum
See configs/tts.py for the variants and fields. Library INFO lines (orbax's
checkpoint loading, JAX's probing of absent backends) are dropped unless
--verbose is given.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from qmotto.evals import tts
from qmotto.evals import tts_report
from qmotto.utils import logs

_CONFIG = config_flags.DEFINE_config_file("config", "configs/tts.py", "Experiment config.")
_VERBOSE = flags.DEFINE_bool(
    "verbose", False, "Keep every library log line (orbax's INFO lines, JAX's backend probing)."
)


def main(argv):
  del argv
  if not _VERBOSE.value:
    logs.quiet_orbax_logs()
    logs.quiet_jax_platform_logs()
  config = _CONFIG.value
  result, paths = tts.run_and_write(config)
  print(tts_report.header_text(result))
  print(tts_report.rows_table(result["rows"], list(config.ks_shown)))
  for text in (tts_report.first_success_table(result["rows"]),
               tts_report.breakdown_table(result["majority_breakdown"])):
    if text:
      print()
      print(text)
  print(tts_report.paths_text(paths))


if __name__ == "__main__":
  app.run(main)
