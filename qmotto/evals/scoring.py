"""Scoring completions and counting distinct answers.

A completion is correct when `task.score_text` reaches config.correct_threshold
(1.0, the tasks' PASS_SCORE). Its answer (the compact completion's answer, or
`qmotto.tasks.extract_answer` of a chat reply) is kept as a 64-bit hash, so
saved chunks stay small.

Distinct answers. For each group of k (the valid sub-groups of size k of a
group of n, or the separate groups of size k), the number of distinct
extracted answers; completions without an extractable answer are not
counted. Averaged over sub-groups, groups and problems.
"""

from __future__ import annotations

import hashlib

import numpy as np

from qmotto import metrics
from qmotto import sampling
from qmotto import tasks


def answer_hash(answer: str) -> int:
  """A signed 64-bit hash of an extracted answer (stable across runs and machines)."""
  return int.from_bytes(hashlib.blake2b(answer.encode(), digest_size=8).digest(), "little", signed=True)


class Scorer:
  """Scores completions and extracts answers, once per distinct (problem, text) in a run."""

  MAX_CACHED = 500_000  # distinct (problem, text) pairs kept; then the cache starts over.

  def __init__(self, task, style: str, threshold: float):
    self.task, self.style, self.threshold = task, style, threshold
    self._extract = task.compact_to_answer if style == "compact" else None
    self._cache: dict = {}

  def __call__(self, problem, text: str) -> tuple[bool, str | None]:
    """(correct, the extracted answer as text or None) of one completion."""
    key = (problem.index, text)
    hit = self._cache.get(key)
    if hit is None:
      score = float(self.task.score_text(problem, text, self.style))
      if self._extract is None:
        answer = tasks.extract_answer(text)
      else:
        answer = self._extract(problem, text)
      if len(self._cache) >= self.MAX_CACHED:
        self._cache.clear()
      hit = self._cache[key] = (score >= self.threshold, None if answer is None else str(answer))
    return hit


def answer_codes(answered: np.ndarray, hashes: np.ndarray) -> np.ndarray:
  """int[P, ...]: per problem, the answers as small ints (-1: no answer)."""
  codes = np.full(hashes.shape, -1, np.int64)
  for p in range(hashes.shape[0]):
    mask = answered[p]
    if mask.any():
      codes[p][mask] = np.unique(hashes[p][mask], return_inverse=True)[1]
  return codes


def distinct_per_group(codes: np.ndarray, sampler: str | sampling.Sampler, k: int) -> np.ndarray:
  """float64[P]: mean distinct answers in a group of k (unanswered completions not counted).

  Args:
    codes: int[P, R, n] answer codes (-1: none) of groups of n.
    sampler: the sampler that drew them, a name or a `qmotto.Sampler`.
    k: the group size: n, or a valid sub-group size (for i.i.d. groups, the
      aligned blocks of k are used).
  """
  sampler = sampling.get_sampler(sampler)
  n = codes.shape[-1]
  if k == n:
    sub = np.arange(n)[None, :]
  elif sampler.independent:
    sub = np.arange((n // k) * k).reshape(-1, k)
  else:
    sub = metrics.valid_subgroups(sampler, n, k)
  groups = np.sort(codes[:, :, sub], axis=-1)  # [P, R, S, k]
  new = groups >= 0
  new[..., 1:] &= groups[..., 1:] != groups[..., :-1]
  return new.sum(-1).mean(axis=(1, 2))
