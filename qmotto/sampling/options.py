"""Sampling options: the sampler and the logit transform, travelling as ONE frozen object.

`SamplingOptions` is what `qmotto.generate`, `sample_sequences_batched` and
the sharded entry points take (`sampling=`), and what their jitted loops
receive as a single static argument: hashable, so the same options reuse one
compilation, and built and validated in one place.

    opts = SamplingOptions.create("lattice", temperature=0.7, top_p=0.95)
    opts = SamplingOptions(get_sampler("sobol"), LogitTransform(top_k=50))
    as_options("lattice")        # a name or a Sampler: default transform
"""

from __future__ import annotations

import dataclasses

from qmotto.sampling import samplers as samplers_lib
from qmotto.sampling import transforms


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
  """How every token of a group is drawn.

  Attributes:
    sampler: a `Sampler`; a name from `SAMPLERS` is converted to one.
    transform: the `LogitTransform` (temperature, top-k, top-p, min-p) applied
      before the inverse CDF.
    check_logits: raise a ValueError when a logits row holds a NaN or is all
      -inf (eagerly, or under the caller's jit when the program runs). With
      False the loop does not look at the logits at all.
  """

  sampler: samplers_lib.Sampler = samplers_lib.SAMPLERS["lattice"]
  transform: transforms.LogitTransform = transforms.LogitTransform()
  check_logits: bool = True

  def __post_init__(self):
    object.__setattr__(self, "sampler", samplers_lib.get_sampler(self.sampler))
    if not isinstance(self.transform, transforms.LogitTransform):
      raise ValueError(
          f"SamplingOptions.transform must be a qmotto.LogitTransform, got {type(self.transform).__name__}."
      )
    if not isinstance(self.check_logits, bool):
      raise ValueError(f"SamplingOptions.check_logits must be True or False, got {self.check_logits!r}.")

  @classmethod
  def create(
      cls,
      sampler: str | samplers_lib.Sampler = "lattice",
      *,
      temperature: float = 1.0,
      top_k: int | None = None,
      top_p: float | None = None,
      min_p: float | None = None,
      check_logits: bool = True,
  ) -> "SamplingOptions":
    """Options from loose settings (the one place they are assembled).

    Args:
      sampler: a name from `SAMPLERS` or a `Sampler`.
      temperature, top_k, top_p, min_p: see `LogitTransform`.
      check_logits: see the class docstring.
    """
    return cls(sampler, transforms.LogitTransform(temperature, top_k, top_p, min_p), check_logits)

  @property
  def greedy(self) -> bool:
    """True at temperature 0: every sample is the argmax path."""
    return self.transform.greedy


def as_options(sampling, name: str = "sampling") -> SamplingOptions:
  """`sampling` as SamplingOptions: options as they are, a sampler name or Sampler with the default transform.

  Args:
    sampling: a `SamplingOptions`, a `Sampler`, or a name from `SAMPLERS`.
    name: the argument to name in the message.

  Raises:
    ValueError: for anything else, or an unknown sampler name.
  """
  if isinstance(sampling, SamplingOptions):
    return sampling
  if isinstance(sampling, (str, samplers_lib.Sampler)):
    return SamplingOptions(sampling)
  raise ValueError(
      f"{name} must be a qmotto.SamplingOptions, a qmotto.Sampler or a sampler name (one of "
      f"{sorted(samplers_lib.SAMPLERS)}), got {type(sampling).__name__}."
  )
