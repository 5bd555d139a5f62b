"""Reinforcement learning with coupled groups: GRPO whose G samples per prompt come from any sampler.

    from qmotto.rl import grpo
    metrics = grpo.train(config)          # configs/grpo.py

See `qmotto.rl.grpo` (the trainer), `qmotto.rl.advantages` (group
advantages and which are unbiased under coupling) and `qmotto.rl.toy_policy`
(the exact-gradient check of the estimator).
"""

from qmotto.rl import advantages
from qmotto.rl.advantages import ADVANTAGES

__all__ = ["ADVANTAGES", "advantages"]
