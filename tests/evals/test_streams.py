"""Tests of the samplers' random streams (qmotto.evals.streams)."""

from qmotto import sampling
from qmotto.evals import streams


def test_stream_ids_are_the_first_four_name_bytes():
  assert streams.stream_id("iid") == int.from_bytes(b"iid\0", "little")
  assert streams.stream_id("lattice") == int.from_bytes(b"latt", "little")
  # Distinct for the samplers of one run: each keeps its own samples when another is added.
  names = ("iid", "antithetic", "stratified", "lattice", "sobol")
  assert len({streams.stream_id(name) for name in names}) == len(names)
  assert all(0 <= streams.stream_id(name) < 2**32 for name in sampling.SAMPLERS)
