"""The test-time-scaling runner: majority and weighted votes, best-of-n and sampling until verified.

    from qmotto.evals import tts, tts_report
    result, paths = tts.run_and_write(config)     # configs/tts.py; or run(config) alone
    print(tts_report.rows_table(result["rows"], list(config.ks_shown)))

`run(config)` checks the config (`tts_config.check_config`, before any
loading), loads the model and encodes `num_problems` test problems of a task
(`run_setup.setup`), and for every sampler draws R independently randomized
groups of N = config.group_size samples per problem (R = 1 for coupled
samplers by default; i.i.d. pools config.iid_replications groups) with
`qmotto.generate`, resumably in chunks (`chunks.sample_all`, the pass@k
runner's sampling: the same config fields give the same samples), scoring
each completion with the task's scorer and keeping its answer, length and
mean token log-probability. Then `tts_analysis.analyze_tts` estimates, per
sampler, pass@k, maj@k, weighted@k and bon@k at config.ks and first_success
(sampling until verified in rounds of config.round_size within the budget
N, for each verifier false-positive rate q) with bootstrap intervals over
problems and the samples saved against i.i.d., and the maj@k breakdown by
whether the model's most likely answer is right. Rounds are read from the
slot order of each group of N; for the extensible samplers first_success
needs, that is the same as drawing in rounds (see `tts_analysis`).

`run_and_write` writes <output_dir>/<task>_<model>.json, .png and
_samples.npz and rebuilds <output_dir>/summary.json from every result there
(`tts_outputs`), holding the results folder's lock. A run holds the lock of
its task and model in config.workdir while it samples, and an interrupted
run resumes from its saved chunks and gives exactly the result of an
uninterrupted one.

`check_config` and `build_summary` are re-exported here, beside `run` and
`run_and_write`, as the runner's entry points.
"""

from __future__ import annotations

import time
from typing import Callable

from absl import logging

from qmotto.evals import chunks
from qmotto.evals import run_setup
from qmotto.evals import tts_analysis
from qmotto.evals import tts_outputs
from qmotto.evals.tts_config import check_config
from qmotto.evals.tts_outputs import build_summary
from qmotto.utils import locks

__all__ = ["build_summary", "check_config", "run", "run_and_write"]
# The runner's name in lock messages and progress bars.
RUNNER = "test-time scaling"


def run(config, *, task=None, on_chunk: Callable[[str, int, int], None] | None = None) -> dict:
  """Runs the test-time-scaling comparison described by `config` (see configs/tts.py).

  Args:
    config: the run config.
    task: optional task object used instead of config.task (tests, notebooks).
    on_chunk: optional hook, see `chunks.sample_all`.

  Returns:
    The result dict (`tts_outputs.write_result` writes it): kind, task,
    model, style, config, rows (`tts_analysis.analyze_tts`), majority_breakdown,
    per_problem estimates, majority_at_infinity, per-sampler statistics, and
    "arrays" (sampler -> the sample arrays [P, R, N] behind the estimates;
    written to the .npz, not the JSON).
  """
  began = time.time()
  check_config(config)  # the strategies' fields first: a bad one fails before the model loads.
  s = run_setup.setup(config, task=task)
  logging.info("%s on %s (%s style): %d problems, prompts of %d tokens, max_new_tokens=%d",
               s.model_name, s.task.name, s.style, len(s.problems), s.prompts.shape[1], s.max_new_tokens)
  with chunks.run_lock(config, s, runner=RUNNER):  # one run per task and model in config.workdir.
    samples = chunks.sample_all(config, s, on_chunk=on_chunk)
  analysis = tts_analysis.analyze_tts(config, s, samples)
  return dict(
      kind=tts_outputs.RESULT_KIND,
      version=tts_outputs.RESULT_VERSION,
      **run_setup.describe_run(config, s),
      group_size=int(config.group_size),
      round_size=int(config.round_size),
      workdir=samples["directory"],
      seconds=time.time() - began,
      config=config.to_dict() if hasattr(config, "to_dict") else dict(config),
      **analysis,
  )


def run_and_write(config, *, task=None, on_chunk=None) -> tuple[dict, dict[str, str]]:
  """`run`, then `tts_outputs.write_result` to config.output_dir (holding its lock); (result, paths)."""
  result = run(config, task=task, on_chunk=on_chunk)
  with locks.output_lock(config.output_dir, name="config.output_dir",
                         run=f"{RUNNER} {result['task']}_{result['model']}"):
    return result, tts_outputs.write_result(result, config.output_dir, plot=bool(config.plot))
