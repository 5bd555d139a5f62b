"""qmotto: correlated (quasi-Monte Carlo) test-time scaling for language models.

The k samples of a group are drawn from shared randomized quasi-Monte Carlo
uniforms pushed through inverse-CDF decoding: each sample is an exact draw from
the model, and the group covers more distinct answers than independent draws.
"""

from qmotto import metrics
from qmotto import qmc
from qmotto import sampling
from qmotto.sampling import SAMPLERS
from qmotto.sampling import LogitTransform
from qmotto.sampling import Sampler
from qmotto.sampling import get_sampler
from qmotto.sampling import sample_sequences
from qmotto.sampling import sample_sequences_batched

__version__ = "0.1.0"

__all__ = [
    "LogitTransform",
    "SAMPLERS",
    "Sampler",
    "get_sampler",
    "metrics",
    "qmc",
    "sample_sequences",
    "sample_sequences_batched",
    "sampling",
]
