"""Valid sub-groups: which subsets of a coupled group are themselves groups of the sampler.

A sub-group of m slots of a group of n is valid when it is distributed
exactly like a fresh group of m samples of the same sampler; "any sample
correct" on it is then unbiased for pass@m. Which sub-groups are valid
depends only on the sampler's *group structure*, a name from
GROUP_STRUCTURES. A `qmotto.Sampler` carries its own (`Sampler.group_structure`),
so these functions take the sampler (any object with a `group_structure`
attribute) or the structure name itself, and this package needs no sampler
code.

The structures, by sampler (slot i of a group holds point i of the n-point set):
  * "independent", iid: every subset (Chen's estimator pooled over all R * n samples is the
    average over all of them, and the best one).
  * "strided", lattice in code mode: for m dividing n, the n/m stride subsets
    {i : i = r mod n/m}: each is {(j/m + D + r/n) mod 1}, a shifted m-point
    lattice with a uniform shift.
  * "whole", lattice in token mode: only m = 1 and m = n. A stride subset is a shifted
    rank-1 lattice with generating vector z_n mod m, but a fresh m-point
    group uses the Korobov vector chosen for m (`qmc.generating_vector`),
    which differs in general (e.g. n = 64, m = 8: 1 vs 3 as multiplier), so
    the stride subset estimates pass@m of a different sampler.
  * "dyadic", sobol (either mode, either scramble), n = 2**L: for m = 2**j the n/m
    aligned blocks of consecutive slots [b m, (b + 1) m). In Gray-code order
    such a block is the first 2**j points digitally shifted, and Owen or
    LMS + digital-shift scrambling absorbs digital shifts.
  * "paired", antithetic (either mode): m = 1, and even m: the floor(n/m) aligned
    blocks [b m, (b + 1) m), each made of m/2 whole pairs (u, 1 - u).
  * "whole", stratified (either mode): only m = 1 and m = n; no proper subset of the
    strata is a stratified set of its size.
  * every sampler: m = 1 (each slot is an exact marginal draw) and m = n.

In code mode a sample's tokens depend only on its own starting coordinate and
on the group's shared rotations, so a subset of slots whose starting points
are distributed like a fresh m-point set gives sequences distributed exactly
like a fresh group of m.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from qmotto.metrics import _validate

GROUP_STRUCTURES = ("independent", "strided", "dyadic", "paired", "whole")
# valid_subgroups refuses to list more i.i.d. subsets than this (use Chen).
MAX_IID_SUBGROUPS = 1 << 20

_RULES = {
    "independent": "every subset of an independent group is a group",
    "strided": "its valid sub-groups are the stride subsets, of sizes dividing the group size",
    "dyadic": "its valid sub-groups are aligned dyadic blocks, of power-of-two sizes",
    "paired": "its valid sub-groups are single slots or whole antithetic pairs (even sizes)",
    "whole": (
        "only single slots and the whole group are valid: no proper subset of a stratified group is "
        "a stratified set, and in token mode a lattice's stride subset has another generating vector "
        "than a fresh group of that size"
    ),
}


@dataclasses.dataclass(frozen=True)
class GroupStructure:
  """A group structure and the sampler it came from (named in messages).

  Attributes:
    name: one of GROUP_STRUCTURES.
    label: how messages name the sampler, e.g. "sampler 'lattice'".
  """

  name: str
  label: str

  @classmethod
  def of(cls, sampler) -> "GroupStructure":
    """The structure of a `qmotto.Sampler` (its `group_structure`) or of a structure name.

    Raises:
      ValueError: naming what is accepted, for anything else (a sampler
        *name* too: resolve it with `qmotto.get_sampler` first).
    """
    if isinstance(sampler, str):
      if sampler in GROUP_STRUCTURES:
        return cls(sampler, f"group structure {sampler!r}")
      raise ValueError(
          f"sampler={sampler!r} is not a group structure: qmotto.metrics takes the sampler object "
          f"(e.g. qmotto.get_sampler({sampler!r})) or a structure, one of {GROUP_STRUCTURES}."
      )
    structure = getattr(sampler, "group_structure", None)
    if structure not in GROUP_STRUCTURES:
      raise ValueError(
          "sampler must be a qmotto.Sampler (or anything with a group_structure in "
          f"{GROUP_STRUCTURES}) or a structure name, got {sampler!r} ({type(sampler).__name__})."
      )
    name = getattr(sampler, "name", None)
    return cls(structure, f"sampler {name!r}" if name else f"group structure {structure!r}")

  @property
  def independent(self) -> bool:
    return self.name == "independent"

  def check_group_size(self, group_size, arg: str = "group_size") -> int:
    """`group_size` as an int, if the sampler can draw groups of that size."""
    n = _validate.int_argument(arg, group_size, minimum=1)
    if self.name == "dyadic" and n & (n - 1):
      raise ValueError(
          f"{arg}={n} is not a group size {self.label} can make: a Sobol group is the first 2**m "
          "points (a power of two)."
      )
    return n

  def allowed_sizes(self, n: int) -> list[int]:
    """Increasing sizes m with valid sub-groups in a group of n (always 1 and n)."""
    if self.name == "independent":
      return list(range(1, n + 1))
    if self.name == "strided":
      return [m for m in range(1, n + 1) if n % m == 0]
    if self.name == "dyadic":
      return [1 << j for j in range(n.bit_length()) if (1 << j) <= n]
    if self.name == "paired":
      return sorted({1, n} | set(range(2, n + 1, 2)))
    return sorted({1, n})

  def check_size(self, n: int, size, arg: str) -> int:
    """`size` as an int, if groups of n have valid sub-groups of that size."""
    size = _validate.int_argument(arg, size, minimum=1)
    allowed = self.allowed_sizes(n)
    if size > n:
      raise ValueError(
          f"{arg}={size} exceeds the group size {n}: {self.label} is coupled, so pass@{size} needs "
          f"groups of at least {size} samples drawn together (allowed sizes for groups of {n}: {allowed})."
      )
    if size not in allowed:
      raise ValueError(
          f"{arg}={size} is not a valid sub-group size for {self.label} with groups of {n} "
          f"({_RULES[self.name]}); allowed sizes: {allowed}. For other sizes draw separate groups "
          "of exactly that size."
      )
    return size

  def subgroups(self, n: int, m: int) -> np.ndarray:
    """int64[num_subgroups, m] slot indices of the valid sub-groups (m already checked)."""
    slots = np.arange(n, dtype=np.int64)
    if m == n:
      return slots[None, :]
    if m == 1:
      return slots[:, None]
    if self.name == "independent":
      count = math.comb(n, m)
      if count > MAX_IID_SUBGROUPS:
        raise ValueError(
            f"m={m}: an i.i.d. group of {n} has C({n}, {m}) = {count} subsets, more than "
            f"{MAX_IID_SUBGROUPS} to list; use chen_pass_at_k (or pass_at_k), which averages "
            "over all of them in closed form."
        )
      return np.array(list(itertools.combinations(range(n), m)), dtype=np.int64).reshape(count, m)
    if self.name == "strided":
      stride = n // m
      return slots.reshape(m, stride).T.copy()  # row r: r, r + stride, ...
    if self.name in ("dyadic", "paired"):
      num_blocks = n // m
      return slots[: num_blocks * m].reshape(num_blocks, m)
    raise AssertionError(f"unhandled sub-group rule for {self.name!r}, m={m}")  # pragma: no cover


def allowed_subgroup_sizes(sampler, group_size: int) -> list[int]:
  """Sizes m for which a group of `group_size` samples has valid sub-groups.

  Args:
    sampler: a `qmotto.Sampler` (anything with a `group_structure`) or a
      structure name from GROUP_STRUCTURES.
    group_size: n, the number of samples drawn together in one group.

  Returns:
    Increasing list of allowed sizes, always holding 1 and n.

  Raises:
    ValueError: for an unknown sampler or structure, or a group size the
      sampler cannot make (e.g. Sobol with n not a power of two).
  """
  structure = GroupStructure.of(sampler)
  return structure.allowed_sizes(structure.check_group_size(group_size))


def valid_subgroups(sampler, group_size: int, m: int) -> np.ndarray:
  """Slot indices of the valid sub-groups of size m of one group.

  Args:
    sampler: a `qmotto.Sampler` (anything with a `group_structure`) or a
      structure name from GROUP_STRUCTURES.
    group_size: n, the number of samples drawn together in one group.
    m: sub-group size; must be in `allowed_subgroup_sizes(sampler, n)`.

  Returns:
    int64[num_subgroups, m]: row s holds the slots of sub-group s.
      * m = n: one row, all slots.
      * m = 1: every slot alone.
      * independent: all C(n, m) subsets (at most MAX_IID_SUBGROUPS; for
        more use `chen_pass_at_k`, which averages over all of them in
        closed form).
      * strided (lattice, code mode), m | n: the n/m stride subsets
        {r, r + n/m, r + 2 n/m, ...}, r = 0 .. n/m - 1.
      * dyadic (sobol), m = 2**j: the n/m aligned blocks [b m, (b + 1) m).
      * paired (antithetic), even m: the floor(n/m) aligned blocks [b m, (b + 1) m).

  Raises:
    ValueError: naming the sampler and the allowed sizes when m is not valid.
  """
  structure = GroupStructure.of(sampler)
  n = structure.check_group_size(group_size)
  return structure.subgroups(n, structure.check_size(n, m, "m"))
