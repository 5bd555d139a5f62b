"""Seeded, disjoint train and test splits.

Disjointness is by content, not only by seed: every problem has a canonical
key (`formats.FORMATS[name].key`, a function of its question; equal compact
prompts give equal keys), and a fixed hash of the key puts it in "test"
(a TEST_FRACTION share of all keys) or "train" (the rest). A split only ever
holds problems whose key hashes to it, so no test question or compact prompt
can occur anywhere in training, for any number of problems of either split
and even across option settings. This matters for easy settings with few
distinct problems (small mazes, 3-number countdown), where seed-disjoint
items repeat each other's problems by chance.

Problem `index` of a split is reasoning-gym's item `index` of
`create_dataset(name, seed=S, size=N, **options)` (N > index) with
S = base + attempt * SEED_STRIDE for the first attempt = 0, 1, ... whose item
hashes to the split (base is TRAIN_SEED or TEST_SEED). reasoning-gym seeds
item i with S + i, so problems of different indices never share a seed, and
since start + n <= MAX_SPLIT_ITEMS the train seeds (mod 2**32 in
[TRAIN_SEED, TEST_SEED)) never equal test seeds (mod 2**32 in
[TEST_SEED, 2**31)) either. Each index is generated independently, so
`start` streams any window without generating the ones before it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any

from qmotto.tasks import formats
from qmotto.tasks import registry

SPLITS = ("train", "test")

# Base seeds of the splits: far apart, so item seeds never meet (see above).
TRAIN_SEED = 1_000_003
TEST_SEED = 1_000_000_007
# Seed offset between attempts of one index.
SEED_STRIDE = 2**32
# Largest start + n of a split.
MAX_SPLIT_ITEMS = 999_000_000
# Share of problem keys reserved for the test split (test generation tries
# 1 / TEST_FRACTION items per problem on average, train 1 / (1 - TEST_FRACTION)).
TEST_FRACTION = 0.25
# Attempts per index before giving up (a task with almost no distinct problems).
MAX_ATTEMPTS = 200

_BASE_SEEDS = {"train": TRAIN_SEED, "test": TEST_SEED}


@dataclasses.dataclass(frozen=True)
class Problem:
  """One problem of a split.

  Attributes:
    index: its index in the split.
    question: reasoning-gym's question text.
    answer: reasoning-gym's reference answer.
    entry: the raw reasoning-gym item (question, answer, metadata) the scorer
      needs. Shared with a cache: treat it as read-only. Not compared or
      hashed (the other fields identify the problem), so problems hash.
    dataset_seed: the problem is item `index` of
      `reasoning_gym.create_dataset(name, seed=dataset_seed, size > index, **options)`.
  """

  index: int
  question: str
  answer: str
  entry: dict = dataclasses.field(repr=False, compare=False)
  dataset_seed: int | None = None


def split_of_key(key: str) -> str:
  """"test" or "train": where a problem with canonical key `key` belongs (a fixed hash)."""
  digest = hashlib.sha256(key.encode("utf-8")).digest()
  u = int.from_bytes(digest[:8], "big") / 2.0**64
  return "test" if u < TEST_FRACTION else "train"


def check_split(split: str) -> str:
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
  return split


def _dataset_size(index: int) -> int:
  # gsm_symbolic draws every item's template up front (Random(seed).choices(k=size)),
  # a prefix-stable list: any size > index gives the same item. Round up to reuse datasets.
  return max(1024, 1 << (index + 1).bit_length())


@functools.lru_cache(maxsize=64)
def _dataset(name: str, options: tuple[tuple[str, Any], ...], seed: int, size: int):
  return registry.make_dataset(name, options, seed, size)


@functools.lru_cache(maxsize=1 << 14)
def problem_at(name: str, options: tuple[tuple[str, Any], ...], split: str, index: int) -> Problem:
  """Problem `index` of `split` (options as resolved by `registry.resolve_options`)."""
  key_of = formats.FORMATS[name].key
  errors = []
  for attempt in range(MAX_ATTEMPTS):
    seed = _BASE_SEEDS[split] + attempt * SEED_STRIDE
    try:
      entry = _dataset(name, options, seed, _dataset_size(index))[index]
    except (ValueError, RuntimeError) as e:  # reasoning-gym gave up on this seed: try the next.
      errors.append(e)
      if len(errors) >= 8:
        raise RuntimeError(f"task {name!r} with options {dict(options)}: reasoning-gym failed to "
                           f"generate items {len(errors)} times; last error: {e}") from e
      continue
    if split_of_key(key_of(entry)) == split:
      return Problem(index, entry["question"], entry["answer"], entry, seed)
  raise RuntimeError(
      f"task {name!r} with options {dict(options)}: no {split} problem for index {index} in "
      f"{MAX_ATTEMPTS} attempts; the options allow too few distinct problems."
  )


def problems(name: str, options: tuple[tuple[str, Any], ...], split: str, n: int, start: int = 0) -> list[Problem]:
  """Problems start .. start + n - 1 of `split`."""
  check_split(split)
  for arg, value in (("n", n), ("start", start)):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      raise ValueError(f"{arg} must be a non-negative int, got {value!r}.")
  if start + n > MAX_SPLIT_ITEMS:
    raise ValueError(f"start + n must be at most MAX_SPLIT_ITEMS={MAX_SPLIT_ITEMS}, got {start + n}.")
  return [problem_at(name, options, split, i) for i in range(start, start + n)]
