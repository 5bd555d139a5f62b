"""Coupled sampling of one token per sample: transforms, inverse CDF, samplers, the per-step coupling.

    opts = qmotto.SamplingOptions.create("lattice", temperature=0.7, top_p=0.95)
    tokens, codes, invalid, logprobs = coupling.coupled_step(opts, logits, words, codes, rotation, t)

The decode loops that call this step for whole sequences live in
`qmotto.decode`. Modules:
  transforms     LogitTransform (temperature, top-k, top-p, min-p) -> weights
  truncation     exact top-k and top-p thresholds without sorting the vocabulary
  inverse_cdf    robust inverse-CDF token choice and the rescaled uniform
  logit_checks   the one check of logits (NaN, all -inf) and its error
  samplers       Sampler (point set + mode), SAMPLERS, get_sampler
  options        SamplingOptions: the sampler and the transform as one object
  coupling       group keys, initial words, rotations, one coupled step
"""

from qmotto.sampling import coupling
from qmotto.sampling import inverse_cdf
from qmotto.sampling import logit_checks
from qmotto.sampling import transforms
from qmotto.sampling import truncation
from qmotto.sampling.inverse_cdf import choose_tokens
from qmotto.sampling.inverse_cdf import invert_cdf
from qmotto.sampling.options import SamplingOptions
from qmotto.sampling.options import as_options
from qmotto.sampling.samplers import SAMPLERS
from qmotto.sampling.samplers import Sampler
from qmotto.sampling.samplers import get_sampler
from qmotto.sampling.transforms import LogitTransform
from qmotto.sampling.transforms import token_weights

__all__ = [
    "LogitTransform",
    "SAMPLERS",
    "Sampler",
    "SamplingOptions",
    "as_options",
    "choose_tokens",
    "coupling",
    "get_sampler",
    "inverse_cdf",
    "invert_cdf",
    "logit_checks",
    "token_weights",
    "transforms",
    "truncation",
]
