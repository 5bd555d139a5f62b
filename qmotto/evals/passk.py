"""The pass@k runner: a language model, a reasoning task, i.i.d. vs coupled samplers.

    from qmotto.evals import passk, report
    result, paths = passk.run_and_save(config)    # configs/passk.py; or run(config) alone
    print(report.format_table(result["rows"]))

`run(config)` loads a model and encodes `num_problems` test problems of a
task (`run_setup.setup`, which first checks the config with
`run_config.check_config`); for every sampler draws R independent groups of
n samples per problem with `qmotto.generate`, resumably in chunks
(`chunks.sample_all`), scoring each completion with `task.score_text` and
extracting its answer (`scoring`); then builds the rows of pass@k, union
bound, samples saved and distinct answers per sampler and k
(`analysis.analyze`). `save_outputs` writes <output_dir>/<task>_<model>.json
and .png and rebuilds <output_dir>/summary.json (`build_summary`; see
`outputs`). The same config gives the same samples (see `streams`), and a
rerun after an interruption gives exactly the result of an uninterrupted
run.

Before loading the model, `setup` checks that the run can write
config.output_dir and config.workdir (`run_config.check_directories`); `run` samples holding the
lock of its task and model in config.workdir (`chunks.run_lock`: a second
such run is refused at once, naming the first), and `run_and_save` writes
the results folder holding its lock (`qmotto.utils.locks.output_lock`).

`setup`, `check_config`, `build_summary` and `save_outputs` are re-exported
here, beside `run` and `run_and_save`, as the runner's entry points.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from absl import logging

from qmotto.evals import analysis
from qmotto.evals import chunks
from qmotto.evals import outputs
from qmotto.evals import run_setup
from qmotto.evals.outputs import build_summary
from qmotto.evals.outputs import save_outputs
from qmotto.evals.run_config import check_config
from qmotto.evals.run_setup import setup
from qmotto.utils import locks

__all__ = ["build_summary", "check_config", "run", "run_and_save", "save_outputs", "setup"]


def run(config, *, task=None, on_chunk: Callable[[str, int, int], None] | None = None) -> dict:
  """Runs the pass@k comparison described by `config` (see configs/passk.py).

  Args:
    config: the run config.
    task: optional task object used instead of config.task (tests, notebooks).
    on_chunk: optional hook, see `chunks.sample_all`.

  Returns:
    The result dict (`save_outputs` writes it): kind, task, model, style,
    config, rows (one per sampler and k), per-sampler statistics, the
    per-problem pass@k of every sampler and p_i from all samples
    (answer_probs, with answer_samples per problem).
  """
  began = time.time()
  s = setup(config, task=task)  # checks the config, then the directories, before loading the model.
  logging.info("%s on %s (%s style): %d problems, prompts of %d tokens, max_new_tokens=%d",
               s.model_name, s.task.name, s.style, len(s.problems), s.prompts.shape[1], s.max_new_tokens)
  with chunks.run_lock(config, s):  # one run per task and model in config.workdir.
    samples = chunks.sample_all(config, s, on_chunk=on_chunk)
  rows, extra = analysis.analyze(config, s, samples)
  return dict(
      kind=outputs.RESULT_KIND,
      version=outputs.RESULT_VERSION,
      **run_setup.describe_run(config, s),
      mean_pass_at_1=float(np.mean(extra["answer_probs"])),
      workdir=samples["directory"],
      seconds=time.time() - began,
      config=config.to_dict() if hasattr(config, "to_dict") else dict(config),
      rows=rows,
      samplers=extra["stats"],
      answer_probs=extra["answer_probs"],
      answer_samples=extra["answer_samples"],
      per_problem_pass_at_k=extra["per_problem"],
  )


def run_and_save(config, *, task=None, on_chunk=None) -> tuple[dict, dict[str, str]]:
  """`run`, then `save_outputs` to config.output_dir (holding its `locks.output_lock`); (result, paths)."""
  result = run(config, task=task, on_chunk=on_chunk)
  with locks.output_lock(config.output_dir, name="config.output_dir", run=f"pass@k {result['task']}_{result['model']}"):
    return result, save_outputs(result, config.output_dir, plot=bool(config.plot))
