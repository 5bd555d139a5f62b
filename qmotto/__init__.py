"""qmotto: correlated (quasi-Monte Carlo) test-time scaling for language models.

The k samples of a group are drawn from shared randomized quasi-Monte Carlo
uniforms pushed through inverse-CDF decoding: each sample is an exact draw from
the model, and the group covers more distinct answers than independent draws.
"""

from qmotto import decoding
from qmotto import metrics
from qmotto import models
from qmotto import qmc
from qmotto import sampling
from qmotto import sharding
from qmotto.decoding import GenerateOutput
from qmotto.decoding import generate
from qmotto.models import LlamaConfig
from qmotto.models import Model
from qmotto.models import forward_logits
from qmotto.models.loading import load_model
from qmotto.sampling import SAMPLERS
from qmotto.sampling import LogitTransform
from qmotto.sampling import Sampler
from qmotto.sampling import get_sampler
from qmotto.sampling import sample_sequences
from qmotto.sampling import sample_sequences_batched

__version__ = "0.1.0"

__all__ = [
    "GenerateOutput",
    "LlamaConfig",
    "Model",
    "decoding",
    "forward_logits",
    "generate",
    "load_model",
    "models",
    "LogitTransform",
    "SAMPLERS",
    "Sampler",
    "get_sampler",
    "metrics",
    "qmc",
    "sample_sequences",
    "sample_sequences_batched",
    "sampling",
    "sharding",
]
