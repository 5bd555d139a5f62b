"""What a newcomer sees from the main job, experiments/passk.py (the README's first command).

Its code path is run as a subprocess on a tiny random checkpoint for a real
task, the way the README runs it: the table with a header that says what each
sampler drew, the paths of the files it wrote, and none of the library INFO
lines (orbax's checkpoint loading, JAX's "Unable to initialize backend 'tpu'")
that used to bury it; --verbose brings them back.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.evals import helpers as evals_helpers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Library INFO lines the default run must not show: orbax's (absl's "I<date> ... <orbax file>.py:<line>]"
# prefix with an orbax module, or its messages) and JAX's backend probing.
NOISE = re.compile(
    r"Unable to initialize backend|orbax|CheckpointManager|checkpoint_manager\.py|checkpointer\.py"
    r"|composite_checkpoint_handler|event_tracking\.py|Restoring checkpoint"
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  path = tmp_path_factory.mktemp("main_job") / "ckpt"
  name = evals_helpers.save_real_task_checkpoint(path, max_new_tokens=8)
  return name, path


def _run(checkpoint, tmp_path, *extra):
  _, path = checkpoint
  env = dict(os.environ)
  env.pop("JAX_PLATFORMS", None)  # let JAX probe its backends as a newcomer's run does.
  return subprocess.run(
      [sys.executable, "experiments/passk.py", "--config=configs/passk.py:smoke", f"--config.model={path}",
       f"--config.output_dir={tmp_path / 'out'}", f"--config.workdir={tmp_path / 'work'}",
       "--config.num_problems=2", "--config.samplers=('iid','lattice')", "--config.problems_per_call=2",
       "--config.replications=1", "--config.iid_replications=2", "--config.progress=False", *extra],
      cwd=REPO, capture_output=True, text=True, timeout=600, env=env,
  )


def test_default_run_is_quiet_and_names_its_files(checkpoint, tmp_path):
  name, _ = checkpoint
  proc = _run(checkpoint, tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  output = proc.stdout + proc.stderr
  assert not [line for line in output.splitlines() if NOISE.search(line)], output[-3000:]
  out = tmp_path / "out"
  paths = {"json": out / f"{name}_ckpt.json", "png": out / f"{name}_ckpt.png", "summary": out / "summary.json"}
  for path in paths.values():
    assert path.exists() and str(path) in proc.stdout, (path, proc.stdout)
  lines = proc.stdout.splitlines()
  # The paths come after the table, so they are the last thing a newcomer reads.
  table_end = max(i for i, line in enumerate(lines) if line.startswith(("iid ", "lattice ")))
  assert all(i > table_end for i, line in enumerate(lines) if str(out) in line)
  # The header counts what each sampler drew: two i.i.d. groups of 8, one lattice group of 8.
  assert "drawn (problems x groups x group size): iid 2 x 2 x 8, lattice 2 x 1 x 8." in proc.stdout
  assert "95% bootstrap intervals over problems" in proc.stdout and "bound 95% CI" in proc.stdout
  rows = json.load(open(paths["json"]))["rows"]
  assert all(r["union_bound_p_from"] == "all_samples" and r["union_bound_samples"] == 2 * 8 + 8 for r in rows)


def test_verbose_flag_brings_the_library_lines_back(checkpoint, tmp_path):
  proc = _run(checkpoint, tmp_path, "--verbose", "--config.ks=(1,8)", "--config.plot=False")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert any(NOISE.search(line) for line in proc.stderr.splitlines()), proc.stderr[-3000:]


def test_quiet_jax_platform_logs_keeps_warnings():
  import logging  # pylint: disable=g-import-not-at-top

  from qmotto.utils import logs  # pylint: disable=g-import-not-at-top

  logger = logging.getLogger(logs.JAX_PLATFORM_LOGGER)
  level = logger.level
  try:
    logs.quiet_jax_platform_logs()
    assert not logger.isEnabledFor(logging.INFO)  # "Unable to initialize backend 'tpu': ..."
    assert logger.isEnabledFor(logging.WARNING)  # "An NVIDIA GPU may be present ..., but ..."
  finally:
    logger.setLevel(level)
