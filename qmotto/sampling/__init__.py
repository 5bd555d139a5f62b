"""Coupled sampling: inverse-CDF token choice, samplers, and the decode loop."""

from qmotto.sampling.inverse_cdf import LogitTransform
from qmotto.sampling.inverse_cdf import choose_tokens
from qmotto.sampling.inverse_cdf import invert_cdf
from qmotto.sampling.inverse_cdf import token_weights
from qmotto.sampling.samplers import SAMPLERS
from qmotto.sampling.samplers import Sampler
from qmotto.sampling.samplers import get_sampler
from qmotto.sampling.sequences import DecodeState
from qmotto.sampling.sequences import decode_step
from qmotto.sampling.sequences import sample_sequences
from qmotto.sampling.sequences import sample_sequences_batched

__all__ = [
    "DecodeState",
    "LogitTransform",
    "SAMPLERS",
    "Sampler",
    "choose_tokens",
    "decode_step",
    "get_sampler",
    "invert_cdf",
    "sample_sequences",
    "sample_sequences_batched",
    "token_weights",
]
