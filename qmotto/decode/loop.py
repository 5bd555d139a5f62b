"""Model-agnostic coupled sampling of whole sequences, and slices of a group.

The model is seen only through `logits_fn(tokens, t)`, so a fake model can
test the sampler and any model can use it. The decode loop is one
`lax.while_loop` over a fixed-size token buffer: nothing recompiles from call
to call for the same shapes and options.

Slices: every decode entry point takes `num_samples=` as a group size n or
as a `GroupSlice(offset, size, group_size)`, which draws slots [offset,
offset + size) of each group of `group_size`: the samples a call with
`num_samples=group_size` (same key, same group ids) puts in those slots.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from qmotto.decode import checks
from qmotto.sampling import coupling
from qmotto.sampling import logit_checks
from qmotto.sampling import options as options_lib
from qmotto.sampling import samplers as samplers_lib

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
LOGITS_SOURCE = ("logits_fn", "Check the model's outputs and any masking.")


@flax.struct.dataclass
class GroupSlice:
  """Slots [offset, offset + size) of every group of `group_size` samples.

  Passed as `num_samples=` to `generate`, `sample_sequences_batched` or
  their sharded forms, it draws exactly the samples that the same call with
  `num_samples=group_size` puts in those slots: slot i uses point i of the
  group's `group_size`-point set (made on its own, `index=`), and the
  code-mode rotations depend only on (key, group id, step), so they are
  shared by all slices. Any sampler may be sliced and every sliced sample is
  an exact draw. Whether the slots drawn so far are a coupled group of their
  own size is the sampler's: for an extensible sampler
  (`Sampler.extensible`) a prefix of a group of N is the group of that size
  (so rounds of slices stay one group of N, `sample_until_accepted`); for
  the natural-order lattice and stratified only all N slots together are a
  group, though each slot stays exact.

  The offset is data (a new offset reuses the compiled loop); the sizes are
  static. Checked by `as_group_slice`.

  Attributes:
    offset: o, the first slot: an int, or an integer scalar array (traced
      under the caller's jit).
    size: b >= 1, the slots drawn per group, the output's sample axis.
    group_size: N, the size of the group the points are made for; o + b <= N.
  """

  offset: Any
  size: int = flax.struct.field(pytree_node=False)
  group_size: int = flax.struct.field(pytree_node=False)

  def sample_ids(self) -> jax.Array:
    """uint32[size]: the point indices offset, ..., offset + size - 1."""
    return jnp.asarray(self.offset, jnp.uint32) + jnp.arange(self.size, dtype=jnp.uint32)


def as_group_slice(num_samples, sampler: samplers_lib.Sampler) -> GroupSlice:
  """`num_samples` (a group size or a `GroupSlice`) as a checked GroupSlice.

  Args:
    num_samples: n, a whole group of n (slots [0, n)), or a GroupSlice.
    sampler: the sampler; it checks the group size (`Sampler.check_group_size`).

  Returns:
    GroupSlice with Python int sizes and a uint32 offset (a NumPy scalar, or
    a traced scalar as given).

  Raises:
    ValueError: naming the field and what it allows.
  """
  if not isinstance(num_samples, GroupSlice):
    n = sampler.check_group_size(num_samples)
    return GroupSlice(np.uint32(0), n, n)
  group_size = sampler.check_group_size(num_samples.group_size, "GroupSlice.group_size")
  size = checks.check_count("GroupSlice.size", num_samples.size)
  offset = num_samples.offset
  if size > group_size:
    raise ValueError(f"GroupSlice.size={size} exceeds GroupSlice.group_size={group_size}.")
  if isinstance(offset, jax.core.Tracer):
    if jnp.ndim(offset) != 0 or not jnp.issubdtype(offset.dtype, jnp.integer):
      raise ValueError(f"GroupSlice.offset must be an integer scalar, got {offset.dtype}{list(offset.shape)}.")
    return GroupSlice(offset.astype(jnp.uint32), size, group_size)
  offset = checks.check_count("GroupSlice.offset", offset, minimum=0)
  if offset + size > group_size:
    raise ValueError(
        f"GroupSlice: offset + size = {offset} + {size} exceeds group_size={group_size}; a slice draws "
        "slots [offset, offset + size) of a group of group_size."
    )
  return GroupSlice(np.uint32(offset), size, group_size)


@flax.struct.dataclass
class DecodeState:
  """The decode loop's carry. G groups of n samples, L positions.

  Attributes:
    step: int32[] the position being sampled.
    tokens: int32[G, n, L] sampled tokens; positions >= step hold padding.
    codes: uint32[G, n] carried coordinates (code mode; unused in token mode).
    invalid: bool[] whether some logits row had a NaN or only -inf so far.
  """

  step: jax.Array
  tokens: jax.Array
  codes: jax.Array
  invalid: jax.Array


@functools.partial(jax.jit, static_argnames=("logits_fn", "num_samples", "length", "options", "pad_id"))
def sample_groups(
    key: jax.Array,
    group_ids: jax.Array,
    sample_ids: jax.Array,
    *,
    logits_fn: LogitsFn,
    num_samples: int,
    length: int,
    options: options_lib.SamplingOptions,
    pad_id: int,
) -> tuple[jax.Array, jax.Array]:
  """The jitted loop of `sample_sequences_batched`, on checked arguments.

  Args:
    key: PRNG key.
    group_ids: uint32[G] the groups' ids.
    sample_ids: uint32[n] which of the group's num_samples points to make.
    logits_fn: (tokens int32[G, n, length], t) -> float[G, n, V].
    num_samples: N, the group size the point sets are built for.
    length: positions to sample.
    options: the sampling options.
    pad_id: fills the positions not yet sampled.

  Returns:
    (tokens int32[G, n, length], invalid bool[]: some logits row was invalid).
  """
  num_groups, n = group_ids.shape[0], sample_ids.shape[0]
  points_keys, rotation_keys = coupling.group_keys(key, group_ids)
  words = coupling.initial_words(options.sampler, points_keys, num_samples, length, sample_ids)  # [G, n, s]
  rotations = coupling.step_rotations(options.sampler, rotation_keys, length)  # [G, length]
  state = DecodeState(
      step=jnp.int32(0),
      tokens=jnp.full((num_groups, n, length), pad_id, jnp.int32),
      codes=words[:, :, 0],
      invalid=jnp.bool_(False),
  )

  def body(state: DecodeState) -> DecodeState:
    # The barrier stops XLA from constant-folding the CDF work when logits_fn
    # ignores its inputs (a fixed distribution): folding [G*N, V] cumsums at
    # compile time takes far longer than computing them.
    logits = jax.lax.optimization_barrier(logits_fn(state.tokens, state.step))
    logit_checks.check_logits_array(logits, LOGITS_SOURCE[0], (num_groups, n))
    rotation = jax.lax.dynamic_index_in_dim(rotations, state.step, axis=1, keepdims=False)  # [G]
    tokens, codes, invalid, _ = coupling.coupled_step(options, logits, words, state.codes, rotation, state.step)
    return DecodeState(
        step=state.step + 1,
        tokens=jax.lax.dynamic_update_index_in_dim(state.tokens, tokens, state.step, axis=2),
        codes=codes,
        invalid=state.invalid | invalid,
    )

  state = jax.lax.while_loop(lambda s: s.step < length, body, state)
  return state.tokens, state.invalid


def prepare_sampling(logits_fn, num_groups, num_samples, length, sampling, pad_id) -> tuple[jax.Array, dict]:
  """Checks `sample_sequences_batched`'s static arguments (same meaning).

  Shared with the sharded entry point (`qmotto.sharding.GroupSharding`).

  Returns:
    (sample_ids uint32[n], static): the points of each group to make (all
    of them, or a slice's) and the static keyword arguments of
    `sample_groups`: {logits_fn, num_samples (the group size N), length,
    options, pad_id}.
  """
  if not callable(logits_fn):
    raise ValueError(f"logits_fn must be callable, got {type(logits_fn).__name__}.")
  options = options_lib.as_options(sampling)
  checks.check_count("num_groups", num_groups)
  slots = as_group_slice(num_samples, options.sampler)
  return slots.sample_ids(), dict(
      logits_fn=logits_fn,
      num_samples=slots.group_size,
      length=options.sampler.check_length(length),
      options=options,
      pad_id=checks.check_count("pad_id", pad_id, minimum=0),
  )


def sample_sequences_batched(
    key: jax.Array,
    logits_fn: LogitsFn,
    *,
    num_groups: int,
    num_samples: int | GroupSlice,
    length: int,
    sampling: options_lib.SamplingOptions | str = "lattice",
    pad_id: int = 0,
    group_ids: jax.Array | None = None,
) -> jax.Array:
  """Samples G groups of coupled sequences, each group independently randomized.

  Group g uses the key `fold_in(key, group_ids[g])` (default group_ids =
  arange(G)), so a group's samples depend only on (key, its id): groups can be
  split over calls or devices and still give the same samples.

  Args:
    key: PRNG key.
    logits_fn: (tokens int32[G, n, length], t int32[]) -> float[G, n, vocab],
      the logits for position t; positions >= t of `tokens` hold `pad_id`.
    num_groups: G.
    num_samples: n, samples per group, or a `GroupSlice(offset, size,
      group_size)`: slots [offset, offset + size) of groups of group_size,
      the samples this call with num_samples=group_size puts there (n = size).
    length: positions to sample.
    sampling: a `SamplingOptions` (sampler, logit transform, logit check),
      or a sampler name / `Sampler` with the default transform.
    pad_id: the token id that fills positions not yet sampled.
    group_ids: optional int[G] ids of the groups (default arange(G)).

  Returns:
    int32[G, n, length] sampled tokens.
  """
  sample_ids, static = prepare_sampling(logits_fn, num_groups, num_samples, length, sampling, pad_id)
  group_ids = checks.check_group_ids(group_ids, checks.check_count("num_groups", num_groups))
  tokens, invalid = sample_groups(key, group_ids, sample_ids, **static)
  if static["options"].check_logits:
    logit_checks.raise_if_invalid(invalid, *LOGITS_SOURCE)
  return tokens


@functools.lru_cache(maxsize=256)
def _single_group_fn(logits_fn: LogitsFn) -> LogitsFn:
  # Cached so the same logits_fn always gets the same wrapper: the jit cache
  # keys on it, and a fresh wrapper per call would retrace every time.
  def batched_logits_fn(tokens: jax.Array, t: jax.Array) -> jax.Array:
    return logits_fn(tokens[0], t)[None]

  return batched_logits_fn


def sample_sequences(
    key: jax.Array,
    logits_fn: LogitsFn,
    *,
    num_samples: int,
    length: int,
    sampler="lattice",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
) -> jax.Array:
  """Samples one group of `num_samples` coupled sequences.

  Every sample is an exact draw from the model (after the logit transform);
  together the group covers more distinct sequences than independent draws.
  Same key, same samples. Runs eagerly, under `jax.jit` and under `lax.map`.
  This is group 0 of `sample_sequences_batched` with the same key, with
  `SamplingOptions.create(sampler, temperature=..., ...)` and pad_id 0.

  `logits_fn` is a static argument: calling again with the same function
  object reuses the compiled loop. To vary data (weights, prompts, tables)
  without recompiling, build `logits_fn` from traced arguments inside your
  own `jax.jit`, e.g.
    @jax.jit
    def sample(key, params):
      return qmotto.sample_sequences(key, functools.partial(model, params), ...)

  Args:
    key: PRNG key.
    logits_fn: (tokens int32[num_samples, length], t int32[]) ->
      float[num_samples, vocab], the logits for position t; positions >= t of
      `tokens` hold 0.
    num_samples: samples in the group.
    length: positions to sample.
    sampler: a name from `qmotto.SAMPLERS` ("iid", "antithetic",
      "stratified", "lattice", "sobol", ...) or a `Sampler`.
    temperature: >= 0; 0 is greedy.
    top_k: None or an int >= 1.
    top_p: None or in (0, 1].
    min_p: None or in [0, 1].

  Returns:
    int32[num_samples, length].
  """
  if not callable(logits_fn):
    raise ValueError(f"logits_fn must be callable, got {type(logits_fn).__name__}.")
  options = options_lib.SamplingOptions.create(
      sampler, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p
  )
  tokens = sample_sequences_batched(
      key, _single_group_fn(logits_fn), num_groups=1, num_samples=num_samples, length=length, sampling=options
  )
  return tokens[0]
