"""Samplers: which point set feeds the uniforms, and how (code or token mode).

A `Sampler` is a frozen, hashable dataclass, so it can be a static argument of
`jax.jit`; `get_sampler(name)` turns a config string into one.

Modes (METHOD.md):
  * "code": each sample carries one coordinate c (its point of a 1-D set). At
    every step the token is the bin holding c, c is rescaled into that bin,
    c <- (c - l) / p, and then every carried coordinate of the group is
    rotated by one shared fresh uniform w_t, c <- (c + w_t) mod 1. The
    rotation makes each sample's coordinate exactly uniform and independent
    of its own past at every step (so each sample is an exact draw at any
    length, in float32), while the spacing inside a group of samples that
    share a prefix is unchanged.
  * "token": coordinate t of sample i's s-dimensional point drives token t.

Order (`Sampler.order`): slot i of a group holds point i of the set.
"natural" for every sampler; "radical_inverse" only for the 1-D lattice of
code mode (`SAMPLERS["lattice_extensible"]`): the same evenly spaced points
{l / n + D}, with slot i at (phi_2(i) + D) mod 1, phi_2 the van der Corput
radical inverse (`qmc.extensible_lattice`), so that its first 2**j slots are
a shifted 2**j-point lattice.

Group structure (`Sampler.group_structure`): which subsets of a group of n
samples are themselves distributed like a fresh group of the same sampler,
the data `qmotto.metrics` needs to estimate pass@k without bias. It is one
of `qmotto.metrics.GROUP_STRUCTURES`: "independent" (iid: every subset),
"strided" (the 1-D shifted lattice of code mode: its stride subsets),
"dyadic" (Sobol, either mode, and the lattice in radical-inverse order:
aligned blocks of 2**j), "paired" (antithetic: aligned blocks of whole
pairs) or "whole" (stratified, and lattice in token mode, whose stride
subsets use another generating vector than a fresh group: only single slots
and the whole group).

Extensible (`Sampler.extensible`): point i does not depend on the group size,
so a group of N can be drawn in slices (`qmotto.decode.GroupSlice`) or in
rounds until a verifier accepts (`qmotto.decode.sample_until_accepted`), and
the slots drawn so far are always a prefix of one group of N.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from qmotto import qmc
from qmotto.utils import numbers

MODES = ("code", "token")
ORDERS = ("natural", "radical_inverse")
# Point sets whose point i depends on (key, i) only, not on the set size n.
_INDEX_BASED_POINTS = ("iid", "antithetic", "sobol")


@dataclasses.dataclass(frozen=True)
class Sampler:
  """A coupled (or independent) sampler.

  Attributes:
    points: point set name, one of `qmotto.qmc.POINT_SETS`.
    mode: "code" or "token" (see the module docstring).
    scramble: Sobol randomization, "owen" or "lms".
    pad: Sobol token mode beyond `qmc.SOBOL_MAX_DIM` tokens: "none" raises,
      "iid" uses independent uniforms for the extra positions.
    order: which point goes to slot i: "natural" (point i of the set), or
      "radical_inverse" (the lattice of code mode only: slot i holds
      (phi_2(i) + D) mod 1, the extensible lattice, see the module docstring).
  """

  points: str = "lattice"
  mode: str = "code"
  scramble: str = "owen"
  pad: str = "none"
  order: str = "natural"

  def __post_init__(self):
    if self.points not in qmc.POINT_SETS:
      raise ValueError(
          f"Sampler.points: unknown point set {self.points!r}; allowed: {sorted(qmc.POINT_SETS)}."
      )
    if self.mode not in MODES:
      raise ValueError(f"Sampler.mode: unknown mode {self.mode!r}; allowed: {MODES}.")
    if self.points == "iid" and self.mode == "code":
      raise ValueError(
          "Sampler: points='iid' needs mode='token'; a carried i.i.d. code shares the "
          "group rotation and would not keep the samples independent."
      )
    if self.scramble not in ("owen", "lms"):
      raise ValueError(f"Sampler.scramble: {self.scramble!r}; allowed: ('owen', 'lms').")
    if self.pad not in qmc.SOBOL_PADS:
      raise ValueError(f"Sampler.pad: {self.pad!r}; allowed: {qmc.SOBOL_PADS}.")
    if self.order not in ORDERS:
      raise ValueError(f"Sampler.order: unknown order {self.order!r}; allowed: {ORDERS}.")
    if self.order == "radical_inverse" and (self.points, self.mode) != ("lattice", "code"):
      raise ValueError(
          f"Sampler.order='radical_inverse' is the extensible 1-D lattice: it needs points='lattice' and "
          f"mode='code', got points={self.points!r}, mode={self.mode!r}; other samplers allow only "
          "order='natural'."
      )

  @property
  def name(self) -> str:
    for name, sampler in SAMPLERS.items():
      if sampler == self:
        return name
    suffix = "" if self.order == "natural" else f"_{self.order}"
    return f"{self.points}_{self.mode}{suffix}"

  @property
  def independent(self) -> bool:
    """True when the samples of a group are independent (plain sampling)."""
    return self.points == "iid"

  @property
  def group_structure(self) -> str:
    """Which sub-groups of a group are valid groups (see the module docstring)."""
    if self.independent:
      return "independent"
    if self.order == "radical_inverse":
      return "dyadic"  # aligned blocks of 2**j slots are shifted 2**j-point lattices.
    if self.points == "lattice":
      return "strided" if self.mode == "code" else "whole"
    if self.points == "sobol":
      return "dyadic"
    if self.points == "antithetic":
      return "paired"
    return "whole"

  @property
  def extensible(self) -> bool:
    """True when slot i of a group does not depend on the group size.

    What it guarantees: point i of the sampler's set is a function of (key,
    i) alone, and the code-mode rotations of (key, group id, step) alone, so
    for m <= n the first m slots of a group of n are exactly (the same
    values, not only the same distribution) the group of m drawn with the
    same key and group id. Drawn in slices or rounds, the slots drawn so far
    are then always a prefix of one group of the final size N: every sample
    is an exact draw whatever the stopping rule, and every prefix whose size
    the group structure allows is itself a coupled group (for "dyadic"
    samplers the prefixes of 2**j slots, for iid every prefix, for
    antithetic those of whole pairs).

    True for iid, antithetic and sobol (either mode, either scramble), whose
    points are indexed by i, and for the lattice in radical-inverse order
    ("lattice_extensible"). False for the natural-order lattice, point i =
    i / n + D, and for stratified, a permutation of n strata: their first m
    slots of a group of n are exact draws but not a group of m.
    """
    return self.order == "radical_inverse" or self.points in _INDEX_BASED_POINTS

  def check_group_size(self, n: int, name: str = "num_samples") -> int:
    """n as a Python int; raises unless the point set can make a group of n samples.

    Args:
      n: the group size: a Python, NumPy or JAX integer scalar >= 1.
      name: the argument to name in the message.
    """
    n = numbers.check_int(name, n, minimum=1)
    if self.points == "sobol" and n & (n - 1):
      raise ValueError(
          f"{name}={n}: sampler {self.name!r} needs a power of two "
          "(a Sobol group is the first 2**m points)."
      )
    if self.order == "radical_inverse" and n & (n - 1):
      raise ValueError(
          f"{name}={n}: sampler {self.name!r} needs a power of two (its first 2**m points, "
          "in radical-inverse order, are a shifted lattice)."
      )
    if self.points in ("stratified", "lattice"):
      qmc.check_num_points(self.name, n)
    return n

  def check_length(self, length, name: str = "length") -> int:
    """`length` as a Python int; raises unless the sampler can draw sequences that long.

    Token-mode Sobol without padding has one Sobol dimension per token, so
    at most `qmc.SOBOL_MAX_DIM` tokens; every other sampler any length.

    Args:
      length: the number of tokens, an int >= 1.
      name: the argument to name in the message.
    """
    length = numbers.check_int(name, length, minimum=1)
    if self.mode == "token" and self.points == "sobol" and self.pad == "none" and length > qmc.SOBOL_MAX_DIM:
      raise ValueError(
          f"{name}={length} exceeds the {qmc.SOBOL_MAX_DIM} Sobol dimensions of token mode; "
          "use Sampler('sobol', 'token', pad='iid') or a code-mode sampler."
      )
    return length

  def words(self, key: jax.Array, n: int, s: int, index: jax.Array) -> jax.Array:
    """uint32[len(index), s] words of points `index` of this sampler's n-point set."""
    if self.order == "radical_inverse":
      return qmc.extensible_lattice_words(key, n, s, index=index)
    fn = qmc.get_words_fn(self.points)
    if self.points == "sobol":
      return fn(key, n, s, scramble=self.scramble, pad=self.pad, index=index)
    return fn(key, n, s, index=index)


SAMPLERS = {
    "iid": Sampler("iid", "token"),
    "antithetic": Sampler("antithetic", "code"),
    "stratified": Sampler("stratified", "code"),
    "lattice": Sampler("lattice", "code"),
    "lattice_extensible": Sampler("lattice", "code", order="radical_inverse"),
    "sobol": Sampler("sobol", "token", scramble="owen"),
    "sobol_lms": Sampler("sobol", "token", scramble="lms"),
    "sobol_code": Sampler("sobol", "code", scramble="owen"),
    "antithetic_token": Sampler("antithetic", "token"),
    "stratified_token": Sampler("stratified", "token"),
    "lattice_token": Sampler("lattice", "token"),
}


def get_sampler(sampler: str | Sampler) -> Sampler:
  """A Sampler from its name (see SAMPLERS) or a Sampler (returned as is)."""
  if isinstance(sampler, Sampler):
    return sampler
  if not isinstance(sampler, str):
    raise ValueError(
        f"sampler must be a name (one of {sorted(SAMPLERS)}) or a qmotto.Sampler, got "
        f"{sampler!r} ({type(sampler).__name__})."
    )
  if sampler not in SAMPLERS:
    raise ValueError(f"sampler: unknown name {sampler!r}; allowed: {sorted(SAMPLERS)}.")
  return SAMPLERS[sampler]
