"""Training the small character-level task models (supervised, compact format).

    from qmotto.train import sft
    metrics = sft.train(config, workdir)   # configs/train_task.py

See `qmotto.train.sft` (the trainer) and `qmotto.train.data` (examples and batches).
"""

from qmotto.train import data
from qmotto.train import sft
from qmotto.train.sft import TrainState
from qmotto.train.sft import evaluate
from qmotto.train.sft import train

__all__ = ["TrainState", "data", "evaluate", "sft", "train"]
