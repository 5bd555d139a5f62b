"""Random streams per sampler, shared by the model runner (`passk`) and the toy runner (`toy_passk`).

Each sampler draws from its own stream, fold_in(key(seed), stream_id(name)),
so adding a sampler to a run leaves the other samplers' samples unchanged.
Within a stream, group g is randomized by fold_in(stream, g); separate
groups of size k (for a sampler whose groups of n have no valid sub-groups
of size k, e.g. stratified) come from fold_in(stream, k).
"""

from __future__ import annotations


def stream_id(name: str) -> int:
  """A sampler's stream id for `fold_in`: its first 4 name bytes as a little-endian int.

  Names that share their first 4 bytes (lattice and lattice_token, the sobol
  variants) share a stream. Changing the id would change every saved result.
  """
  return int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "little")
