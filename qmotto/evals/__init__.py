"""Evaluations: the pass@k runner for models on tasks, its report and plots, and the toy suite.

    from qmotto.evals import passk, report
    result, paths = passk.run_and_save(config)   # configs/passk.py: run, then write the files
    print(report.format_table(result["rows"]))

    from qmotto.evals import toy_passk           # the toy suite: exact p_i, seconds on a CPU
    result = toy_passk.run(config)               # configs/passk_toy.py

    from qmotto.evals import tts, tts_report     # test-time scaling: votes, best-of-n, until verified
    result, paths = tts.run_and_write(config)    # configs/tts.py
    print(tts_report.rows_table(result["rows"]))

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
The test-time-scaling runner reuses run_config, run_setup, streams, chunks and scoring:
  tts           the runner: run, run_and_write (check_config, build_summary)
  tts_config    its config checks (strategies, ks per sampler, budget and rounds, verifier rates)
  tts_analysis  per-problem maj@k, weighted@k, bon@k, pass@k and first_success; rows; maj@k breakdown
  tts_outputs   the result file, samples .npz and summary.json
  tts_report    its tables
  tts_plots     its figure
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
from qmotto.evals import tts
from qmotto.evals import tts_analysis
from qmotto.evals import tts_config
from qmotto.evals import tts_outputs
from qmotto.evals import tts_plots
from qmotto.evals import tts_report

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
    "tts",
    "tts_analysis",
    "tts_config",
    "tts_outputs",
    "tts_plots",
    "tts_report",
]
