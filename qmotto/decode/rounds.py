"""Sampling in rounds until a verifier accepts, with coupled rounds from an extensible sequence.

    rounds = decode.Rounds(verify=verify, round_size=4, budget=32)
    out = decode.sample_until_accepted(key, model, prompts, prompt_lengths, rounds=rounds,
                                       max_new_tokens=64, sampling="lattice_extensible", eos_id=eos)
    out.first_accepted, out.samples_drawn, out.tokens_spent   # int[P] each

Problem p is group p, randomized by fold_in(key, group_ids[p]) as in
`generate`, and its group has N = budget slots. Round r draws slots
[r b, (r + 1) b) (b = round_size) of every problem still active, as one
`generate` call with `num_samples=GroupSlice(r b, b, N)`; then `verify`
judges them on the host. A problem stops at its first accepted slot (in slot
order; the rest of that round was drawn too and counts as spent) or when all
N slots are drawn.

Why an extensible sampler (`Sampler.extensible`): slot i of a group is then
point i of one sequence, the same whatever N, and the code-mode rotations
are shared by all slices. So after r rounds the r b slots drawn are exactly
the first r b slots of the one group of N that `generate(...,
num_samples=N)` draws with the same key and group id, and every power-of-two
prefix of a "dyadic" sampler is a coupled group of its own (Sobol, the
lattice in radical-inverse order).

Exactness. Slot i's value is a fixed function of the group's randomization,
whether or not it is drawn: stopping decides which slots are drawn, never
what they hold. Each slot is therefore an exact draw from the model, over
the randomization, as in the one-shot group (`tests/decode/test_rounds.py`
checks both: the drawn slots equal the one-shot group's, and the one-shot
group's slots have the model's distribution). What is not exact, and is the
point: the slots *given that they were drawn*. Slot i is drawn only if the
earlier slots were all rejected, and coupled slots are dependent, so their
conditional distribution leans toward the answers the earlier slots missed
(for i.i.d. samples it is the model's). Estimates of the cost to the first
success (samples_drawn, tokens_spent) are unbiased averages over groups.

Compilations: the active problems change from round to round, so each round
pads them to a bucket of min(P, 2**ceil(log2 m)) rows for m active problems
(repeating the last active problem; the copies' results are dropped): at
most ceil(log2 P) + 1 batch shapes, each compiled once, and the slice
offset is data. The float caveat of `generate` applies: the logits can
differ in the last bits with the batch shape, and code-mode samplers can
turn that into other later tokens, so bit-for-bit equality with the
one-shot call needs shapes that XLA computes alike. Exactness survives: a
round's batch (its shape, a problem's place in it) depends only on which
other problems are still active, which (for distinct group ids) is
independent of this problem's randomization, and for any fixed batch its
slots are exact draws.

Runs on the host (the verifier is a Python callback): not under `jax.jit`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.struct
import numpy as np

from qmotto.decode import checks
from qmotto.decode import loop
# By name: the package attribute `qmotto.decode.generate` is the function, not this module.
from qmotto.decode.generate import generate
from qmotto.decode.generate import prepare_generate
from qmotto.models import llama
from qmotto.sampling import options as options_lib
from qmotto.sampling import samplers as samplers_lib

Verifier = Callable[[np.ndarray, np.ndarray, np.ndarray], Any]


def _extensible_names() -> list[str]:
  """The names in `SAMPLERS` of the extensible samplers, sorted (the ones `sample_until_accepted` takes)."""
  return sorted(name for name, sampler in samplers_lib.SAMPLERS.items() if sampler.extensible)


@dataclasses.dataclass(frozen=True)
class Rounds:
  """How `sample_until_accepted` draws: rounds of `round_size` slots per problem, up to `budget`.

  Attributes:
    verify: the host callback (problem_indices int64[m], tokens
      int32[m, b, max_new_tokens], lengths int32[m, b]) -> bool[m, b]:
      whether each slot of the round is accepted, for the m problems that
      were active (their indices into the prompts), b = round_size. Tokens
      after a sample's length hold `pad_id`. Called once per round.
    round_size: b >= 1, slots drawn per active problem per round.
    budget: N, the most slots per problem: the size of the one coupled group
      the rounds are slices of; a multiple of round_size (so >= round_size),
      and a power of two for "dyadic" samplers.
    progress: None, or a callback (rounds_done int, problems_active int)
      called after each round (e.g. to advance a progress bar); problems
      still active have neither an accepted slot nor a spent budget.
  """

  verify: Verifier
  round_size: int
  budget: int
  progress: Callable[[int, int], Any] | None = None

  def __post_init__(self):
    if not callable(self.verify):
      raise ValueError(f"Rounds.verify must be callable, got {type(self.verify).__name__}.")
    round_size = checks.check_count("Rounds.round_size", self.round_size)
    budget = checks.check_count("Rounds.budget", self.budget)
    if budget < round_size:
      raise ValueError(
          f"Rounds: budget={budget} is a budget smaller than a round (round_size={round_size}): a round "
          "draws round_size samples per problem; use budget >= round_size."
      )
    if budget % round_size:
      raise ValueError(
          f"Rounds: budget={budget} must be a multiple of round_size={round_size} (the rounds are the "
          "budget's group cut into equal slices)."
      )
    if self.progress is not None and not callable(self.progress):
      raise ValueError(f"Rounds.progress must be None or callable, got {type(self.progress).__name__}.")
    object.__setattr__(self, "round_size", round_size)
    object.__setattr__(self, "budget", budget)

  @property
  def num_rounds(self) -> int:
    """The most rounds a problem can take: budget / round_size."""
    return self.budget // self.round_size

  def check_sampler(self, sampler: samplers_lib.Sampler) -> None:
    """Raises unless `sampler` can draw a group of `budget` in these rounds.

    Args:
      sampler: the sampler; it must be extensible (`Sampler.extensible`) and
        able to make a group of `budget`.
    """
    if not sampler.extensible:
      raise ValueError(
          f"sampler {sampler.name!r} is not extensible: the first slots of its group of {self.budget} "
          "are not a group of their own, so rounds would not stay one coupled group; use one of "
          f"{_extensible_names()}."
      )
    if sampler.group_structure == "dyadic" and self.budget & (self.budget - 1):
      raise ValueError(
          f"Rounds: budget={self.budget} must be a power of two for sampler {sampler.name!r}: its groups "
          "are the first 2**m points of its sequence (a dyadic group structure)."
      )
    sampler.check_group_size(self.budget, "Rounds.budget")


@flax.struct.dataclass
class RoundsOutput:
  """What `sample_until_accepted` returns, for P problems, N = budget, T = max_new_tokens (NumPy arrays).

  Attributes:
    tokens: int32[P, N, T] the drawn samples in their slots; `pad_id` in
      slots not drawn and after a sample's length.
    logprobs: float32[P, N, T] as `GenerateOutput.logprobs`; 0 where not drawn.
    lengths: int32[P, N] generated lengths; 0 where not drawn.
    drawn: bool[P, N] the slot was drawn (a prefix of whole rounds).
    accepted: bool[P, N] the verifier accepted the slot (False where not drawn).
    samples_drawn: int32[P] slots drawn, a multiple of round_size.
    first_accepted: int32[P] the first accepted slot, -1 if none within the budget.
    tokens_spent: int64[P] generated tokens summed over the drawn slots.
  """

  tokens: np.ndarray
  logprobs: np.ndarray
  lengths: np.ndarray
  drawn: np.ndarray
  accepted: np.ndarray
  samples_drawn: np.ndarray
  first_accepted: np.ndarray
  tokens_spent: np.ndarray


def bucket_size(num_active: int, num_problems: int) -> int:
  """The padded batch for `num_active` problems: min(P, the next power of two >= num_active)."""
  return min(num_problems, 1 << (num_active - 1).bit_length())


def _verdicts(verdicts, num_active: int, round_size: int) -> np.ndarray:
  """The verifier's answer as bool[m, b], or a ValueError saying what it must return."""
  array = np.asarray(verdicts)
  if array.shape != (num_active, round_size) or not (
      array.dtype == bool or np.issubdtype(array.dtype, np.integer)
  ):
    raise ValueError(
        f"Rounds.verify must return bool[{num_active}, {round_size}] (one verdict per slot of the "
        f"round), got {array.dtype}{list(array.shape)}."
    )
  return array.astype(bool)


def sample_until_accepted(
    key,
    model: llama.Model,
    prompts,
    prompt_lengths,
    *,
    rounds: Rounds,
    max_new_tokens: int,
    sampling: options_lib.SamplingOptions | str = "lattice_extensible",
    eos_id: int | None = None,
    pad_id: int = 0,
    group_ids=None,
) -> RoundsOutput:
  """Draws rounds of coupled samples per prompt until `rounds.verify` accepts one, or the budget ends.

  See the module docstring: round r draws slots [r b, (r + 1) b) of each
  active problem's group of N = rounds.budget, so the slots drawn are always
  a prefix of the one group `generate(..., num_samples=N)` draws with the
  same key and group ids.

  Args:
    key: PRNG key.
    model: a `qmotto.models.Model`.
    prompts: int32[P, Lp], right-padded.
    prompt_lengths: int32[P], each in [1, Lp].
    rounds: a `Rounds` (verifier, round size, budget, progress callback).
    max_new_tokens: T >= 1 tokens per sample.
    sampling: `SamplingOptions`, a sampler name or a `Sampler`; the sampler
      must be extensible (`Sampler.extensible`).
    eos_id: the end-of-sequence token (None: always T tokens).
    pad_id: fills padding, as in `generate`.
    group_ids: optional int[P] group ids (default arange(P)).

  Returns:
    RoundsOutput (NumPy arrays): the drawn tokens, logprobs and lengths in
    their slots, the drawn and accepted masks, and per problem samples_drawn,
    first_accepted and tokens_spent.

  Raises:
    ValueError: for a non-extensible sampler, a budget the sampler cannot
      make, a verifier answer of the wrong shape, or any `generate` argument
      error.
  """
  if not isinstance(rounds, Rounds):
    raise ValueError(f"rounds must be a qmotto.decode.Rounds, got {type(rounds).__name__}.")
  options = options_lib.as_options(sampling)
  rounds.check_sampler(options.sampler)
  b, budget = rounds.round_size, rounds.budget
  # Every argument checked once, on the whole batch; the rounds then take row subsets.
  arrays, static = prepare_generate(
      key, model, prompts, prompt_lengths, loop.GroupSlice(0, b, budget), max_new_tokens, options, eos_id,
      pad_id, group_ids,
  )
  prompts, prompt_lengths, group_ids = (np.asarray(x) for x in arrays[2:5])
  num_problems, length = prompts.shape[0], static["max_new_tokens"]

  tokens = np.full((num_problems, budget, length), pad_id, np.int32)  # [P, N, T]
  logprobs = np.zeros((num_problems, budget, length), np.float32)  # [P, N, T]
  lengths = np.zeros((num_problems, budget), np.int32)  # [P, N]
  drawn = np.zeros((num_problems, budget), bool)  # [P, N]
  accepted = np.zeros((num_problems, budget), bool)  # [P, N]
  first_accepted = np.full(num_problems, -1, np.int32)  # [P]
  active = np.ones(num_problems, bool)  # [P]
  for r in range(rounds.num_rounds):
    rows = np.flatnonzero(active)  # [m]
    if not rows.size:
      break
    padded = np.concatenate([rows, np.full(bucket_size(rows.size, num_problems) - rows.size, rows[-1])])
    out = generate(
        key, model, prompts[padded], prompt_lengths[padded], num_samples=loop.GroupSlice(r * b, b, budget),
        max_new_tokens=length, sampling=options, eos_id=eos_id, pad_id=pad_id, group_ids=group_ids[padded],
    )
    round_tokens, round_logprobs, round_lengths = (
        np.asarray(x)[: rows.size] for x in (out.tokens, out.logprobs, out.lengths)
    )  # [m, b, T], [m, b, T], [m, b]
    ok = _verdicts(rounds.verify(rows, round_tokens, round_lengths), rows.size, b)  # [m, b]
    slots = slice(r * b, (r + 1) * b)
    tokens[rows, slots] = round_tokens
    logprobs[rows, slots] = round_logprobs
    lengths[rows, slots] = round_lengths
    drawn[rows, slots] = True
    accepted[rows, slots] = ok
    hit = ok.any(axis=1)  # [m]
    first_accepted[rows[hit]] = r * b + ok[hit].argmax(axis=1)
    active[rows[hit]] = False
    if r + 1 == rounds.num_rounds:
      active[:] = False  # the budget is spent.
    if rounds.progress is not None:
      rounds.progress(r + 1, int(active.sum()))
  return RoundsOutput(
      tokens=tokens,
      logprobs=logprobs,
      lengths=lengths,
      drawn=drawn,
      accepted=accepted,
      samples_drawn=drawn.sum(axis=1).astype(np.int32),
      first_accepted=first_accepted,
      tokens_spent=lengths.sum(axis=1, dtype=np.int64),
  )
