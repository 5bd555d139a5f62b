"""Reinforcement learning with coupled groups: GRPO whose G samples per prompt come from any sampler.

    from qmotto.rl import grpo, summary
    metrics = grpo.train(config)                         # configs/grpo.py
    result = grpo.run(config, command="...")             # + the result file, summary, figures
    print(summary.format_summary(summary.build_summary("results/grpo/maze_experiment")))

Modules:
  grpo        the trainer: config check, initial policy, training problems, the loop, the runner.
  loss        Rollout, the clipped-ratio objective (policy_loss) and the train step.
  rewards     task rewards, scoring a batch of groups, the groups' statistics.
  advantages  group advantages, and which are unbiased under coupling.
  summary     result files across runs, steps to target, the comparison with i.i.d.
  figures     learning-curve figures of runs.
  toy_policy  the exact-gradient check of the estimator (`python -m qmotto.rl.toy_policy`).

The trainer shares the train state, optimizer, held-out evaluation and
resume checks with SFT through `qmotto.train` (state, evaluation, resume).
"""

from qmotto.rl import advantages
from qmotto.rl import figures
from qmotto.rl import grpo
from qmotto.rl import loss
from qmotto.rl import rewards
from qmotto.rl import summary
from qmotto.rl import toy_policy
from qmotto.rl.advantages import ADVANTAGES
from qmotto.rl.figures import figure_runs
from qmotto.rl.loss import LOSS_AGGREGATIONS
from qmotto.rl.loss import LossConfig
from qmotto.rl.loss import Rollout
from qmotto.rl.loss import policy_loss
from qmotto.rl.rewards import REWARDS
from qmotto.rl.rewards import score_rewards
from qmotto.rl.rewards import task_reward_fn
from qmotto.rl.summary import build_summary
from qmotto.rl.summary import format_summary
from qmotto.rl.summary import load_runs

__all__ = [
    "ADVANTAGES",
    "LOSS_AGGREGATIONS",
    "LossConfig",
    "REWARDS",
    "Rollout",
    "advantages",
    "build_summary",
    "figure_runs",
    "figures",
    "format_summary",
    "grpo",
    "load_runs",
    "loss",
    "policy_loss",
    "rewards",
    "score_rewards",
    "summary",
    "task_reward_fn",
    "toy_policy",
]
