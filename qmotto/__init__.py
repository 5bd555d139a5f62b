"""qmotto: correlated (quasi-Monte Carlo) test-time scaling for language models.

The k samples of a group are drawn from shared randomized quasi-Monte Carlo
uniforms pushed through inverse-CDF decoding: each sample is an exact draw from
the model, and the group covers more distinct answers than independent draws.

Packages (ARCHITECTURE.md draws the arrows between them):
  qmc       randomized point sets               sampling  one coupled token step
  decode    loops, generate, sharding           models    Flax decoders, loaders
  metrics   unbiased estimators (NumPy)         tasks     reasoning tasks, prompts
  evals     pass@k runner, reports, plots       train     SFT of the task models
  rl        GRPO with coupled groups            utils     result files, run logs
"""

from qmotto import decode
from qmotto import metrics
from qmotto import models
from qmotto import qmc
from qmotto import sampling
from qmotto.decode import GenerateOutput
from qmotto.decode import GroupSlice
from qmotto.decode import Rounds
from qmotto.decode import generate
from qmotto.decode import sample_sequences
from qmotto.decode import sample_sequences_batched
from qmotto.decode import sample_until_accepted
from qmotto.decode import sharding
from qmotto.models import LlamaConfig
from qmotto.models import Model
from qmotto.models import forward_logits
from qmotto.models.loading import load_model
from qmotto.sampling import SAMPLERS
from qmotto.sampling import LogitTransform
from qmotto.sampling import Sampler
from qmotto.sampling import SamplingOptions
from qmotto.sampling import get_sampler

__version__ = "0.1.0"

__all__ = [
    "GenerateOutput",
    "GroupSlice",
    "LlamaConfig",
    "LogitTransform",
    "Model",
    "Rounds",
    "SAMPLERS",
    "Sampler",
    "SamplingOptions",
    "decode",
    "forward_logits",
    "generate",
    "get_sampler",
    "load_model",
    "metrics",
    "models",
    "qmc",
    "sample_sequences",
    "sample_sequences_batched",
    "sample_until_accepted",
    "sampling",
    "sharding",
]
