"""Randomized point sets: `(key, n, s) -> float32[n, s]` in [0, 1).

Every point of every set is exactly uniform on its own (on the float32 grid
2**-24); the sets differ in how the n points are spread jointly. Each function
also takes `index=` to make only some of the points, so a device can compute
just its slice; the `*_words` forms return the underlying uint32 words.

Words and floats: a uint32 word x stands for x / 2**32. `words_to_unit_float`
keeps its top FLOAT_BITS = 24 bits (exactly uniform floats from uniform
words) and `unit_float_to_words` goes back; the samplers carry their coupled
coordinates as words so that shifts and rotations are exact mod 2**32.
"""

from qmotto.qmc._antithetic import antithetic
from qmotto.qmc._antithetic import antithetic_words
from qmotto.qmc._extensible_lattice import extensible_lattice
from qmotto.qmc._extensible_lattice import extensible_lattice_words
from qmotto.qmc._extensible_lattice import radical_inverse
from qmotto.qmc._iid import iid
from qmotto.qmc._iid import iid_words
from qmotto.qmc._lattice import generating_vector
from qmotto.qmc._lattice import lattice
from qmotto.qmc._lattice import lattice_words
from qmotto.qmc._sobol import MAX_DIM as SOBOL_MAX_DIM
from qmotto.qmc._sobol import PADS as SOBOL_PADS
from qmotto.qmc._sobol import SCRAMBLES as SOBOL_SCRAMBLES
from qmotto.qmc._sobol import sobol
from qmotto.qmc._sobol import sobol_words
from qmotto.qmc._stratified import stratified
from qmotto.qmc._stratified import stratified_words
from qmotto.qmc._bits import FLOAT_BITS
from qmotto.qmc._bits import MAX_GENERAL_N
from qmotto.qmc._bits import check_num_points
from qmotto.qmc._bits import unit_float_to_words
from qmotto.qmc._bits import words_to_unit_float
from qmotto.qmc._lattice import korobov_multiplier
from qmotto.qmc._lattice import p2_criterion

# name -> words function; each takes (key, n, s, *, index=None, **options).
# These are the `Sampler.points` names; `extensible_lattice_words` is the 1-D
# `lattice` in radical-inverse order (`Sampler.order`), not a separate name.
POINT_SETS = {
    "iid": iid_words,
    "antithetic": antithetic_words,
    "stratified": stratified_words,
    "lattice": lattice_words,
    "sobol": sobol_words,
}


def get_words_fn(name: str):
  """The words function of the point set called `name`."""
  if name not in POINT_SETS:
    raise ValueError(f"unknown point set {name!r}; allowed: {sorted(POINT_SETS)}.")
  return POINT_SETS[name]


__all__ = [
    "FLOAT_BITS",
    "MAX_GENERAL_N",
    "POINT_SETS",
    "SOBOL_MAX_DIM",
    "SOBOL_PADS",
    "SOBOL_SCRAMBLES",
    "antithetic",
    "antithetic_words",
    "check_num_points",
    "extensible_lattice",
    "extensible_lattice_words",
    "generating_vector",
    "get_words_fn",
    "iid",
    "iid_words",
    "korobov_multiplier",
    "lattice",
    "lattice_words",
    "p2_criterion",
    "radical_inverse",
    "sobol",
    "sobol_words",
    "stratified",
    "stratified_words",
    "unit_float_to_words",
    "words_to_unit_float",
]
