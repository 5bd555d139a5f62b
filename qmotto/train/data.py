"""Training data for the task models: problems -> fixed-shape token batches.

One example is the character sequence

    [bos] + task.compact_prompt(problem) + task.compact_target(problem) + [eos]

right-padded with pad_id to `seq_len` tokens. The loss is the next-token
cross-entropy on the target and EOS tokens only (`Batch.target_mask`).

The batch of step s holds the training problems s * B .. s * B + B - 1
(`task.problems("train", B, start=s * B)`): it depends on the step alone, so a
run resumed from a checkpoint sees exactly the batches it would have seen.
With `pool_size > 0` the stream instead cycles over the first `pool_size`
training problems (encoded once, then indexed: for tasks whose generator is
slow), problem (s * B + j) mod pool_size at row j of step s.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from qmotto.models import llama
from qmotto.models.loading.char_tokenizer import CharTokenizer

# The prompt format of the task models (`qmotto.tasks.prompting`): what they
# are trained on, sampled with, scored in, and what their checkpoints record.
STYLE = "compact"


class Batch(NamedTuple):
  """One training batch.

  Attributes:
    tokens: int32[B, L] bos + prompt + target + eos, right-padded with pad_id.
    target_mask: float32[B, L] 1 at the target and EOS tokens, else 0.
  """

  tokens: np.ndarray
  target_mask: np.ndarray


def task_model_config(model: Any, vocab_size: int, max_seq_len: int) -> llama.LlamaConfig:
  """The LlamaConfig of a task model from a config's `model` fields (SFT and a random GRPO start).

  Args:
    model: config.model: hidden_size, intermediate_size, num_layers,
      num_heads, num_kv_heads, and optionally rope_theta (10000) and
      tie_embeddings (True).
    vocab_size: the task tokenizer's vocabulary.
    max_seq_len: the longest sequence the run feeds the model.

  Raises:
    ValueError: "config.model: ..." for sizes the model cannot take.
  """
  try:
    return llama.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=model.hidden_size,
        intermediate_size=model.intermediate_size,
        num_layers=model.num_layers,
        num_heads=model.num_heads,
        num_kv_heads=model.num_kv_heads,
        rope_theta=float(model.get("rope_theta", 10000.0)),
        tie_embeddings=bool(model.get("tie_embeddings", True)),
        max_seq_len=max_seq_len,
    )
  except ValueError as e:
    raise ValueError(f"config.model: {e}") from e


def task_tokenizer(task: Any) -> CharTokenizer:
  """The character tokenizer of a task's compact format."""
  return CharTokenizer(task.compact_charset())


def example_ids(tokenizer: CharTokenizer, task: Any, problem: Any) -> tuple[list[int], int]:
  """(ids of bos + prompt + target + eos, number of bos + prompt ids)."""
  prompt = tokenizer.encode(task.compact_prompt(problem))  # bos first.
  target = tokenizer.encode(task.compact_target(problem), add_bos=False)
  return prompt + target + [tokenizer.eos_id], len(prompt)


def encode_batch(tokenizer: CharTokenizer, task: Any, problems: Sequence[Any], seq_len: int) -> Batch:
  """Encodes `problems` as one right-padded Batch of `seq_len` tokens.

  Raises:
    ValueError: an example is longer than `seq_len` (names the problem).
  """
  tokens = np.full((len(problems), seq_len), tokenizer.pad_id, np.int32)
  mask = np.zeros((len(problems), seq_len), np.float32)
  for row, problem in enumerate(problems):
    ids, prompt_len = example_ids(tokenizer, task, problem)
    if len(ids) > seq_len:
      raise ValueError(
          f"{task.name} problem {getattr(problem, 'index', row)}: bos + prompt + target + eos is "
          f"{len(ids)} tokens, more than seq_len={seq_len}; raise config.seq_len (or make the task "
          "easier)."
      )
    tokens[row, : len(ids)] = ids
    mask[row, prompt_len : len(ids)] = 1.0
  return Batch(tokens, mask)


def step_problems(task: Any, step: int, batch_size: int) -> list:
  """The training problems of step `step` (streaming: fresh problems every step)."""
  return task.problems("train", batch_size, start=step * batch_size)


def length_stats(tokenizer: CharTokenizer, task: Any, problems: Sequence[Any]) -> dict[str, int]:
  """The longest example, prompt (with bos) and target (with eos) among `problems`.

  Used to choose `seq_len`, `prompt_len` and `max_new_tokens` of a config.
  """
  examples = [example_ids(tokenizer, task, p) for p in problems]
  return {
      "example": max(len(ids) for ids, _ in examples),
      "prompt": max(n for _, n in examples),
      "target": max(len(ids) - n for ids, n in examples),
  }


class BatchStream:
  """The batches of steps start, start + 1, ..., each a pure function of its step.

  Streaming batches are built ahead in one background thread (`prefetch`
  steps ahead), so generating problems overlaps the train step; pooled
  batches are slices of the pool encoded once at construction.

  Args:
    task: the task (see `qmotto.tasks`).
    tokenizer: its `task_tokenizer`.
    batch_size: B.
    seq_len: L.
    pool_size: 0 to stream fresh problems, else cycle over this many.
    prefetch: how many steps to build ahead when streaming.
  """

  def __init__(
      self, task: Any, tokenizer: CharTokenizer, *, batch_size: int, seq_len: int, pool_size: int = 0,
      prefetch: int = 4,
  ):
    self.task, self.tokenizer = task, tokenizer
    self.batch_size, self.seq_len, self.pool_size = batch_size, seq_len, pool_size
    self._pool = None
    if pool_size:
      self._pool = encode_batch(tokenizer, task, task.problems("train", pool_size, start=0), seq_len)
    self._prefetch = max(1, prefetch)
    self._executor = None
    self._pending: dict[int, concurrent.futures.Future] = {}

  def batch(self, step: int) -> Batch:
    """The batch of `step`, built now (no prefetching)."""
    if self._pool is not None:
      rows = (step * self.batch_size + np.arange(self.batch_size)) % self.pool_size
      return Batch(self._pool.tokens[rows], self._pool.target_mask[rows])
    return encode_batch(self.tokenizer, self.task, step_problems(self.task, step, self.batch_size), self.seq_len)

  def iterate(self, start: int, stop: int) -> Iterator[tuple[int, Batch]]:
    """Yields (step, batch) for step in [start, stop)."""
    if self._pool is not None:
      for step in range(start, stop):
        yield step, self.batch(step)
      return
    if self._executor is None:
      self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches")
    try:
      for step in range(start, stop):
        for ahead in range(step, min(stop, step + self._prefetch + 1)):
          if ahead not in self._pending:
            self._pending[ahead] = self._executor.submit(self.batch, ahead)
        yield step, self._pending.pop(step).result()
    finally:
      self.close()

  def close(self) -> None:
    """Cancels pending batches and stops the background thread."""
    for future in self._pending.values():
      future.cancel()
    self._pending.clear()
    if self._executor is not None:
      self._executor.shutdown(wait=True, cancel_futures=True)
      self._executor = None
