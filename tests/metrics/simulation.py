"""Simulated uniforms of a sampler's groups, for the estimators' unbiasedness tests."""

import numpy as np

KINDS = ("iid", "lattice", "stratified", "antithetic")


def group_uniforms(kind: str, rng: np.random.Generator, num_groups: int, n: int) -> np.ndarray:
  """float64[num_groups, n]: the n uniforms of each group, with the sampler's joint law.

  iid: independent; lattice: i/n plus one shift per group (mod 1); stratified:
  one point in each of the n strata, in random order; antithetic: pairs
  (w, 1 - w).
  """
  if kind == "iid":
    return rng.random((num_groups, n))
  if kind == "lattice":
    return (np.arange(n) / n + rng.random((num_groups, 1))) % 1.0
  if kind == "stratified":
    perm = np.argsort(rng.random((num_groups, n)), axis=1)
    return (perm + rng.random((num_groups, n))) / n
  if kind == "antithetic":
    w = rng.random((num_groups, n // 2))
    return np.stack([w, (1.0 - w) % 1.0], axis=2).reshape(num_groups, n)
  raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
