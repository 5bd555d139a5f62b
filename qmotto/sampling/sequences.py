"""Model-agnostic coupled sampling of whole sequences.

The model is seen only through `logits_fn(tokens, t)`, so a fake model can
test the sampler and any model can use it. The decode loop is one
`lax.while_loop` over a fixed-size token buffer: nothing recompiles from call
to call for the same shapes and options.
"""

from __future__ import annotations

import functools
from typing import Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from qmotto import qmc
from qmotto.qmc import _bits
from qmotto.sampling import inverse_cdf
from qmotto.sampling import samplers as samplers_lib

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]


@flax.struct.dataclass
class DecodeState:
  """The decode loop's carry. G groups of N samples, L positions.

  Attributes:
    step: int32[] the position being sampled.
    tokens: int32[G, N, L] sampled tokens; positions >= step hold padding.
    codes: uint32[G, N] carried coordinates (code mode; unused in token mode).
    invalid: bool[] whether some logits row had a NaN or only -inf so far.
  """

  step: jax.Array
  tokens: jax.Array
  codes: jax.Array
  invalid: jax.Array


def group_keys(key: jax.Array, group_ids: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per-group (points key, rotation key): a function of (key, group id) only."""
  keys = jax.vmap(lambda g: jax.random.split(jax.random.fold_in(key, g)))(group_ids)
  return keys[:, 0], keys[:, 1]


def initial_words(
    sampler: samplers_lib.Sampler,
    points_keys: jax.Array,
    num_samples: int,
    length: int,
    sample_ids: jax.Array,
) -> jax.Array:
  """The group's uniform words: uint32[G, n, 1] (code mode) or [G, n, length].

  Args:
    sampler: the sampler.
    points_keys: [G] per-group keys.
    num_samples: N, the group size the point set is built for.
    length: number of positions (token mode dimension).
    sample_ids: int[n] which of the N points to make (all, or a device's slice).
  """
  s = 1 if sampler.mode == "code" else length
  return jax.vmap(lambda k: sampler.words(k, num_samples, s, sample_ids))(points_keys)


def rotation_words(rotation_keys: jax.Array, step: jax.Array) -> jax.Array:
  """uint32[G]: the shared fresh uniform w_t of each group at step t."""
  return jax.vmap(
      lambda k: jax.random.bits(jax.random.fold_in(k, step), (), jnp.uint32)
  )(rotation_keys)


def decode_step(
    sampler: samplers_lib.Sampler,
    transform: inverse_cdf.LogitTransform,
    logits: jax.Array,
    words: jax.Array,
    codes: jax.Array,
    rotation: jax.Array,
    step: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """One coupled sampling step for G groups of n samples.

  Args:
    sampler: the sampler.
    transform: logit transform.
    logits: float[G, n, V] next-token logits.
    words: uint32[G, n, s] token-mode words (ignored in code mode).
    codes: uint32[G, n] carried coordinates (ignored in token mode).
    rotation: uint32[G] this step's shared rotation (code mode).
    step: int32[] position t.

  Returns:
    tokens: int32[G, n]; codes: uint32[G, n] for the next step; invalid: bool[];
    logprobs: float32[G, n], log-probability of each token under the
    transformed distribution (0 if greedy).
  """
  g, n, vocab = logits.shape
  if sampler.mode == "code":
    u_words = codes
  else:
    u_words = jax.lax.dynamic_index_in_dim(words, step, axis=2, keepdims=False)  # [G, n]
  u = _bits.words_to_unit_float(u_words).reshape(g * n)
  flat_logits = logits.reshape(g * n, vocab)
  tokens, rescaled, logprobs = inverse_cdf.choose_tokens(flat_logits, u, transform)
  if sampler.mode == "code" and not transform.greedy:
    # Rescale into the bin, then rotate the whole group by one fresh uniform:
    # the word sum mod 2**32 is exactly uniform whatever the rescaled value.
    codes = _bits.unit_float_to_words(rescaled).reshape(g, n) + rotation[:, None]
  invalid = jnp.any(inverse_cdf.invalid_rows(flat_logits))
  return tokens.reshape(g, n), codes, invalid, logprobs.reshape(g, n)


@functools.partial(
    jax.jit,
    static_argnames=(
        "logits_fn", "num_samples", "length", "sampler", "transform", "pad_id"
    ),
)
def _sample_groups(
    key: jax.Array,
    group_ids: jax.Array,
    sample_ids: jax.Array,
    *,
    logits_fn: LogitsFn,
    num_samples: int,
    length: int,
    sampler: samplers_lib.Sampler,
    transform: inverse_cdf.LogitTransform,
    pad_id: int,
) -> tuple[jax.Array, jax.Array]:
  num_groups, n = group_ids.shape[0], sample_ids.shape[0]
  points_keys, rotation_keys = group_keys(key, group_ids)
  words = initial_words(sampler, points_keys, num_samples, length, sample_ids)  # [G, n, s]
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
    if logits.ndim != 3 or logits.shape[:2] != (num_groups, n):
      raise ValueError(
          f"logits_fn must return float[{num_groups}, {n}, vocab] logits, got shape {logits.shape}."
      )
    rotation = rotation_words(rotation_keys, state.step)
    tokens, codes, invalid, _ = decode_step(
        sampler, transform, logits, words, state.codes, rotation, state.step
    )
    return DecodeState(
        step=state.step + 1,
        tokens=jax.lax.dynamic_update_index_in_dim(state.tokens, tokens, state.step, axis=2),
        codes=codes,
        invalid=state.invalid | invalid,
    )

  state = jax.lax.while_loop(lambda s: s.step < length, body, state)
  return state.tokens, state.invalid


_INVALID_MESSAGE = (
    "logits_fn returned invalid logits: a row holds a NaN, or every logit of a row is -inf "
    "(no token can be sampled). Check the model's outputs and any masking."
)


def _raise_if_invalid(invalid) -> None:
  if bool(np.asarray(invalid)):
    raise ValueError(_INVALID_MESSAGE)


def _check_invalid(invalid: jax.Array) -> None:
  if isinstance(invalid, jax.core.Tracer):
    jax.debug.callback(_raise_if_invalid, invalid)
  else:
    _raise_if_invalid(invalid)


def _check_length(length) -> None:
  if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
    raise ValueError(f"length must be an int >= 1, got {length!r}.")


def sample_sequences_batched(
    key: jax.Array,
    logits_fn: LogitsFn,
    *,
    num_groups: int,
    num_samples: int,
    length: int,
    sampler: str | samplers_lib.Sampler = "lattice",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    pad_id: int = 0,
    group_ids: jax.Array | None = None,
    check_logits: bool = True,
) -> jax.Array:
  """Samples G groups of coupled sequences, each group independently randomized.

  Group g uses the key `fold_in(key, group_ids[g])` (default group_ids =
  arange(G)), so a group's samples depend only on (key, its id): groups can be
  split over calls or devices and still give the same samples.

  Args:
    key: PRNG key.
    logits_fn: (tokens int32[G, N, length], t int32[]) -> float[G, N, vocab],
      the logits for position t; positions >= t of `tokens` hold `pad_id`.
    num_groups: G.
    num_samples: N, samples per group.
    length: positions to sample.
    sampler: a name from `SAMPLERS` or a `Sampler`.
    temperature, top_k, top_p, min_p: see `LogitTransform`.
    pad_id: the token id that fills positions not yet sampled.
    group_ids: optional int[G] ids of the groups (default arange(G)).
    check_logits: raise if a logits row has a NaN or is all -inf.

  Returns:
    int32[G, N, length] sampled tokens.
  """
  sampler = samplers_lib.get_sampler(sampler)
  sampler.check_group_size(num_samples)
  _check_length(length)
  if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) or num_groups < 1:
    raise ValueError(f"num_groups must be an int >= 1, got {num_groups!r}.")
  if sampler.mode == "token" and sampler.points == "sobol" and sampler.pad == "none":
    if length > qmc.SOBOL_MAX_DIM:
      raise ValueError(
          f"length={length} exceeds the {qmc.SOBOL_MAX_DIM} Sobol dimensions of token mode; "
          "use Sampler('sobol', 'token', pad='iid') or a code-mode sampler."
      )
  transform = inverse_cdf.LogitTransform(temperature, top_k, top_p, min_p)
  if group_ids is None:
    group_ids = jnp.arange(num_groups, dtype=jnp.uint32)
  tokens, invalid = _sample_groups(
      key,
      jnp.asarray(group_ids).astype(jnp.uint32),
      jnp.arange(num_samples, dtype=jnp.uint32),
      logits_fn=logits_fn,
      num_samples=int(num_samples),
      length=int(length),
      sampler=sampler,
      transform=transform,
      pad_id=int(pad_id),
  )
  if check_logits:
    _check_invalid(invalid)
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
    sampler: str | samplers_lib.Sampler = "lattice",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    pad_id: int = 0,
    check_logits: bool = True,
) -> jax.Array:
  """Samples one group of `num_samples` coupled sequences.

  Every sample is an exact draw from the model (after the logit transform);
  together the group covers more distinct sequences than independent draws.
  Same key, same samples. Runs eagerly, under `jax.jit` and under `lax.map`.
  This is group 0 of `sample_sequences_batched` with the same key.

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
      `tokens` hold `pad_id`.
    num_samples: samples in the group.
    length: positions to sample.
    sampler: a name from `qmotto.SAMPLERS` ("iid", "antithetic",
      "stratified", "lattice", "sobol", ...) or a `Sampler`.
    temperature: >= 0; 0 is greedy.
    top_k: None or an int >= 1.
    top_p: None or in (0, 1].
    min_p: None or in [0, 1].
    pad_id: the token id that fills positions not yet sampled.
    check_logits: raise if a logits row has a NaN or is all -inf.

  Returns:
    int32[num_samples, length].
  """
  if not callable(logits_fn):
    raise ValueError(f"logits_fn must be callable, got {type(logits_fn).__name__}.")
  tokens = sample_sequences_batched(
      key,
      _single_group_fn(logits_fn),
      num_groups=1,
      num_samples=num_samples,
      length=length,
      sampler=sampler,
      temperature=temperature,
      top_k=top_k,
      top_p=top_p,
      min_p=min_p,
      pad_id=pad_id,
      check_logits=check_logits,
  )
  return tokens[0]
