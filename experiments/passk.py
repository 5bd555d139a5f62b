r"""pass@k of i.i.d. vs coupled sampling for a model on a reasoning task; prints the table.

  python experiments/passk.py --config=configs/passk.py:task=countdown
  python experiments/passk.py --config=configs/passk.py:model=smollm2,task=chain_sum
See configs/passk.py for the variants and fields. Library INFO lines (orbax's
checkpoint loading, JAX's probing of absent backends) are dropped unless
--verbose is given.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from qmotto.evals import passk
from qmotto.evals import report
from qmotto.utils import logs

_CONFIG = config_flags.DEFINE_config_file("config", "configs/passk.py", "Experiment config.")
_VERBOSE = flags.DEFINE_bool(
    "verbose", False, "Keep every library log line (orbax's INFO lines, JAX's backend probing)."
)


def written_text(paths: dict[str, str]) -> str:
  """The lines naming the files a run wrote: its JSON, its PNG (if plotted) and summary.json."""
  labels = {"json": "result (JSON)", "png": "plot (PNG)", "summary": "summary of the folder"}
  lines = ["Wrote:"]
  for key in ("json", "png", "summary"):
    if paths.get(key):
      lines.append(f"  {labels[key] + ':':<24}{paths[key]}")
  return "\n".join(lines)


def main(argv):
  del argv
  if not _VERBOSE.value:
    logs.quiet_orbax_logs()
    logs.quiet_jax_platform_logs()
  config = _CONFIG.value
  result, paths = passk.run_and_save(config)
  print(report.format_header(result))
  print(report.format_table(result["rows"], list(config.ks_shown)))
  print(written_text(paths))


if __name__ == "__main__":
  app.run(main)
