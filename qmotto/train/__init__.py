"""Training the small character-level task models (supervised, compact format), and what GRPO shares.

        metrics = sft.train(config, workdir)   # configs/train_task.py

Modules:
  sft            the supervised trainer (config check, loss, train step, loop, runner).
  data           examples and fixed-shape batches of a task's compact format.
  state          TrainState, OptimizerConfig and AdamW with warmup + cosine decay.
  evaluation     held-out greedy accuracy and pass@k (EvalSet, evaluate, Evaluator).
  resume         resuming from a checkpoint (check_same_run, uncommitted, Resumed).
  config_checks  config value checks shared by the trainers.

`qmotto.rl` builds GRPO on state, evaluation and resume; it does not import
sft, and importing this package does not either (import `qmotto.train.sft`
by name).
"""

from qmotto.train import config_checks
from qmotto.train import data
from qmotto.train import evaluation
from qmotto.train import resume
from qmotto.train import state
from qmotto.train.evaluation import EvalSet
from qmotto.train.evaluation import Evaluator
from qmotto.train.evaluation import evaluate
from qmotto.train.evaluation import make_eval_set
from qmotto.train.resume import check_same_run
from qmotto.train.state import OptimizerConfig
from qmotto.train.state import TrainState
from qmotto.train.state import make_optimizer

__all__ = [
    "EvalSet",
    "Evaluator",
    "OptimizerConfig",
    "TrainState",
    "check_same_run",
    "config_checks",
    "data",
    "evaluate",
    "evaluation",
    "make_eval_set",
    "make_optimizer",
    "resume",
    "state",
]
