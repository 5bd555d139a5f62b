"""Evaluations: the pass@k runner for models on tasks, its report and plots, and the toy suite.

    from qmotto.evals import passk, report
    result, paths = passk.run_and_save(config)   # configs/passk.py: run, then write the files
    print(report.format_table(result["rows"]))

    from qmotto.evals import toy_passk           # the toy suite: exact p_i, seconds on a CPU
    result = toy_passk.run(config)               # configs/passk_toy.py

Modules, in the order a run uses them:
  passk       the runner: run, run_and_save (setup, check_config, save_outputs, build_summary)
  run_config  the config checks and the values derived from the config
  run_setup   the model, task, prompt style and encoded prompts
  streams     each sampler's random stream (shared with the toy runner)
  chunks      resumable sampling in chunks of problems
  scoring     correctness, answers and distinct answers per group
  analysis    the rows and per-sampler statistics of a run
  outputs     the result file, plot and summary.json
  report      pass@k rows from correctness arrays, and their tables
  plots       pass@k curves and samples saved
  toy         toy problems with exact answer probabilities; toy_passk runs the comparison on them
"""

from qmotto.evals import analysis
from qmotto.evals import chunks
from qmotto.evals import outputs
from qmotto.evals import passk
from qmotto.evals import plots
from qmotto.evals import report
from qmotto.evals import run_config
from qmotto.evals import run_setup
from qmotto.evals import scoring
from qmotto.evals import streams
from qmotto.evals import toy
from qmotto.evals import toy_passk

__all__ = [
    "analysis",
    "chunks",
    "outputs",
    "passk",
    "plots",
    "report",
    "run_config",
    "run_setup",
    "scoring",
    "streams",
    "toy",
    "toy_passk",
]
