"""Coupled decoding with a model: prefill once per prompt, then k coupled samples.

`generate` is `qmotto.sample_sequences_batched` with a real model and a KV
cache. Prompt p is group p: its k samples share the group's quasi-Monte Carlo
uniforms, which come from the same functions the model-agnostic loop uses
(`sequences.group_keys`, `initial_words`, `rotation_words`, `decode_step`).
So with a model whose logits do not depend on the prompt, `generate` gives
exactly the tokens of `sample_sequences_batched` with the same key and
sampler, and every sample is an exact draw from the model.

Layout: prompts are right-padded, int32[P, Lp] with lengths int32[P]. Each
prompt is prefilled once (batch P, a cache of Lp slots). The cache is then
widened to S = min(Lp + max_new_tokens - 1, max_seq_len) slots and repeated
to the P * k sample rows (row p * k + i is sample i of prompt p). One jitted
`lax.while_loop` then feeds each sample's last token at position
len_p + t - 1 and samples token t; slot = position (see `qmotto.models.llama`),
so the prompt padding needs no mask of its own.
"""

from __future__ import annotations

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from qmotto import qmc
from qmotto.models import llama
from qmotto.sampling import inverse_cdf
from qmotto.sampling import samplers as samplers_lib
from qmotto.sampling import sequences


@flax.struct.dataclass
class GenerateOutput:
  """What `generate` returns, for P prompts of k samples and N = max_new_tokens.

  Attributes:
    tokens: int32[P, k, N] sampled tokens; after a sample's EOS (which is
      kept) and beyond its length, `pad_id`.
    logprobs: float32[P, k, N] log-probability of each sampled token under the
      sampling distribution, i.e. after temperature, top-k, top-p and min-p
      (renormalised); 0 after the sample's end, and 0 when greedy
      (temperature 0: a point mass).
    lengths: int32[P, k] tokens generated, the EOS included; N if no EOS.
  """

  tokens: jax.Array
  logprobs: jax.Array
  lengths: jax.Array


@flax.struct.dataclass
class _State:
  """The loop carry. R = P * k sample rows, N = max_new_tokens."""

  step: jax.Array  # int32[] the token index t being sampled.
  tokens: jax.Array  # int32[P, k, N]
  logprobs: jax.Array  # float32[P, k, N]
  lengths: jax.Array  # int32[P, k]
  done: jax.Array  # bool[P, k] the sample has emitted EOS.
  codes: jax.Array  # uint32[P, k] carried coordinates (code mode).
  cache: llama.KVCache  # [L, R, KV, S, Dh]
  invalid: jax.Array  # bool[] some logits row had a NaN or only -inf.


def _forward(model: llama.Model, tokens, positions, cache, logits_at=None):
  """The model call used by generate (a seam for tests that record shapes)."""
  return model.apply(tokens, positions, cache, logits_at)


@functools.partial(
    jax.jit,
    static_argnames=("num_samples", "max_new_tokens", "cache_len", "sampler", "transform"),
)
def _generate(
    key: jax.Array,
    model: llama.Model,
    prompts: jax.Array,
    prompt_lengths: jax.Array,
    group_ids: jax.Array,
    eos_id: jax.Array,
    pad_id: jax.Array,
    *,
    num_samples: int,
    max_new_tokens: int,
    cache_len: int,
    sampler: samplers_lib.Sampler,
    transform: inverse_cdf.LogitTransform,
) -> tuple[GenerateOutput, jax.Array]:
  num_prompts, prompt_len = prompts.shape
  k, n = num_samples, max_new_tokens
  rows = num_prompts * k

  # Prefill each prompt once: batch P, a cache of Lp slots, logits at the last real token.
  positions = jnp.broadcast_to(jnp.arange(prompt_len, dtype=jnp.int32), prompts.shape)  # [P, Lp]
  real = positions < prompt_lengths[:, None]  # [P, Lp]
  prompts = jnp.where(real, prompts, pad_id)  # keep padding ids in the vocabulary.
  prompt_cache = llama.init_cache(model.config, num_prompts, prompt_len)  # [L, P, KV, Lp, Dh]
  logits, prompt_cache = _forward(model, prompts, positions, prompt_cache, prompt_lengths - 1)
  logits = jnp.broadcast_to(logits, (num_prompts, k, logits.shape[-1]))  # [P, k, V]

  # Widen to S slots and repeat each prompt's cache for its k samples: row p * k + i.
  def widen(x):  # [L, P, KV, Lp, Dh] -> [L, P * k, KV, S, Dh]
    x = jnp.repeat(x, k, axis=1)  # [L, P * k, KV, Lp, Dh]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, cache_len - prompt_len), (0, 0)))

  cache = jax.tree.map(widen, prompt_cache)
  row_lengths = jnp.repeat(prompt_lengths, k)  # [P * k]

  # The group's uniforms, exactly as in sequences.sample_sequences_batched.
  sample_ids = jnp.arange(k, dtype=jnp.uint32)
  points_keys, rotation_keys = sequences.group_keys(key, group_ids)
  words = sequences.initial_words(sampler, points_keys, k, n, sample_ids)  # [P, k, s]

  def sample(state: _State, logits: jax.Array) -> _State:
    t = state.step
    rotation = sequences.rotation_words(rotation_keys, t)  # [P]
    tokens, codes, invalid, logp = sequences.decode_step(
        sampler, transform, logits, words, state.codes, rotation, t
    )  # [P, k], [P, k], [], [P, k]
    active = ~state.done  # [P, k]
    tokens = jnp.where(active, tokens, pad_id)
    logp = jnp.where(active, logp, 0.0)
    return _State(
        step=t + 1,
        tokens=jax.lax.dynamic_update_index_in_dim(state.tokens, tokens, t, axis=2),
        logprobs=jax.lax.dynamic_update_index_in_dim(state.logprobs, logp, t, axis=2),
        lengths=jnp.where(active, t + 1, state.lengths),
        done=state.done | (active & (tokens == eos_id)),
        codes=codes,
        cache=state.cache,
        invalid=state.invalid | invalid,
    )

  state = _State(
      step=jnp.int32(0),
      tokens=jnp.full((num_prompts, k, n), pad_id, jnp.int32),
      logprobs=jnp.zeros((num_prompts, k, n), jnp.float32),
      lengths=jnp.zeros((num_prompts, k), jnp.int32),
      done=jnp.zeros((num_prompts, k), bool),
      codes=words[:, :, 0],
      cache=cache,
      invalid=jnp.bool_(False),
  )
  state = sample(state, logits)  # token 0 from the prefill logits.

  def cond(state: _State) -> jax.Array:
    return (state.step < n) & ~jnp.all(state.done)

  def body(state: _State) -> _State:
    t = state.step
    last = jax.lax.dynamic_index_in_dim(state.tokens, t - 1, axis=2, keepdims=False)  # [P, k]
    positions = (row_lengths + t - 1)[:, None]  # [P * k, 1]
    logits, cache = _forward(model, last.reshape(rows, 1), positions, state.cache)  # [P * k, 1, V]
    state = state.replace(cache=cache)
    return sample(state, logits.reshape(num_prompts, k, -1))

  state = jax.lax.while_loop(cond, body, state)
  return GenerateOutput(state.tokens, state.logprobs, state.lengths), state.invalid


_INVALID_MESSAGE = (
    "the model returned invalid logits: a row holds a NaN, or every logit of a row is -inf "
    "(no token can be sampled). Check the parameters and the prompt tokens."
)


def _raise_if_invalid(invalid) -> None:
  if bool(np.asarray(invalid)):
    raise ValueError(_INVALID_MESSAGE)


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def _check_token_id(name: str, value, vocab: int, allow_none: bool) -> None:
  if value is None and allow_none:
    return
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < vocab:
    allowed = "None or " if allow_none else ""
    raise ValueError(f"{name} must be {allowed}an int in [0, vocab_size={vocab}), got {value!r}.")


def generate(
    key: jax.Array,
    model: llama.Model,
    prompts: jax.Array,
    prompt_lengths: jax.Array,
    *,
    num_samples: int,
    max_new_tokens: int,
    sampler: str | samplers_lib.Sampler = "lattice",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    eos_id: int | None = None,
    pad_id: int = 0,
    group_ids: jax.Array | None = None,
    check_logits: bool = True,
) -> GenerateOutput:
  """Draws `num_samples` coupled continuations of every prompt.

  Prompt p is group p, randomized with `fold_in(key, group_ids[p])` (default
  group_ids = arange(P)), as in `sample_sequences_batched`: the same key gives
  the same samples, and a prompt's samples do not depend on the other prompts
  of the call. One caveat: the logits themselves can differ in the last bits
  with the batch layout or the hardware, and code-mode samplers (lattice,
  stratified, antithetic) rescale the carried coordinate by 1/p every step,
  which lets such differences change later tokens. Each sample is an exact
  draw either way; bit-for-bit reproducibility needs the same shapes and
  device. Token-mode samplers (sobol, iid) only change a token when a uniform
  lies within rounding of a bin edge.

  One compilation per (shapes, config, options): new keys, weights, prompts,
  prompt lengths, group ids, eos_id or pad_id reuse it.

  Args:
    key: PRNG key.
    model: a `qmotto.models.Model`.
    prompts: int32[P, Lp], right-padded (anything after a prompt's length).
    prompt_lengths: int32[P], each in [1, Lp].
    num_samples: k, samples per prompt (a power of two for Sobol samplers).
    max_new_tokens: N >= 1; needs prompt_length + N <= config.max_seq_len.
    sampler: a name from `qmotto.SAMPLERS` or a `Sampler`.
    temperature, top_k, top_p, min_p: see `qmotto.LogitTransform`.
    eos_id: the end-of-sequence token (None: always N tokens).
    pad_id: fills prompt padding, positions after EOS and unsampled positions.
    group_ids: optional int[P] group ids (default arange(P)).
    check_logits: raise if a logits row has a NaN or is all -inf.

  Returns:
    GenerateOutput(tokens int32[P, k, N], logprobs float32[P, k, N], lengths int32[P, k]).
    Values are checked when the inputs are concrete; under `jax.jit` the
    caller must keep prompt_lengths in range.
  """
  args, static = _generate_arguments(
      key,
      model,
      prompts,
      prompt_lengths,
      num_samples=num_samples,
      max_new_tokens=max_new_tokens,
      sampler=sampler,
      temperature=temperature,
      top_k=top_k,
      top_p=top_p,
      min_p=min_p,
      eos_id=eos_id,
      pad_id=pad_id,
      group_ids=group_ids,
  )
  output, invalid = _generate(*args, **static)
  if check_logits:
    if _is_concrete(invalid):
      _raise_if_invalid(invalid)
    else:
      jax.debug.callback(_raise_if_invalid, invalid)
  return output


def _generate_arguments(
    key: jax.Array,
    model: llama.Model,
    prompts: jax.Array,
    prompt_lengths: jax.Array,
    *,
    num_samples: int,
    max_new_tokens: int,
    sampler: str | samplers_lib.Sampler,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    min_p: float | None,
    eos_id: int | None,
    pad_id: int,
    group_ids: jax.Array | None,
) -> tuple[tuple, dict]:
  """Checks `generate`'s arguments: (positional args, static kwargs) of `_generate`.

  Shared by `generate` and `qmotto.sharding.sharded_generate`.
  """
  if not isinstance(model, llama.Model):
    raise ValueError(f"model must be a qmotto.models.Model, got {type(model).__name__}.")
  config = model.config
  sampler = samplers_lib.get_sampler(sampler)
  sampler.check_group_size(num_samples)
  if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
    raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}.")
  max_new_tokens = int(max_new_tokens)
  if sampler.mode == "token" and sampler.points == "sobol" and sampler.pad == "none":
    if max_new_tokens > qmc.SOBOL_MAX_DIM:
      raise ValueError(
          f"max_new_tokens={max_new_tokens} exceeds the {qmc.SOBOL_MAX_DIM} Sobol dimensions of "
          "token mode; use Sampler('sobol', 'token', pad='iid') or a code-mode sampler."
      )
  transform = inverse_cdf.LogitTransform(temperature, top_k, top_p, min_p)
  _check_token_id("eos_id", eos_id, config.vocab_size, allow_none=True)
  _check_token_id("pad_id", pad_id, config.vocab_size, allow_none=False)

  prompts = jnp.asarray(prompts)
  prompt_lengths = jnp.asarray(prompt_lengths)
  if prompts.ndim != 2 or not jnp.issubdtype(prompts.dtype, jnp.integer) or 0 in prompts.shape:
    raise ValueError(f"prompts must be a non-empty int[P, Lp], got {prompts.dtype}{list(prompts.shape)}.")
  num_prompts, prompt_len = prompts.shape
  if prompt_lengths.shape != (num_prompts,) or not jnp.issubdtype(prompt_lengths.dtype, jnp.integer):
    raise ValueError(
        f"prompt_lengths must be int[{num_prompts}] (one per prompt), got "
        f"{prompt_lengths.dtype}{list(prompt_lengths.shape)}."
    )
  if prompt_len > config.max_seq_len:
    raise ValueError(
        f"prompts of padded length {prompt_len} exceed the model's max_seq_len={config.max_seq_len}; "
        "trim the padding or use a model with a longer context."
    )
  if _is_concrete(prompt_lengths):
    lengths_np = np.asarray(prompt_lengths)
    if lengths_np.min() < 1 or lengths_np.max() > prompt_len:
      raise ValueError(
          f"prompt_lengths must be in [1, {prompt_len}] (the padded prompt length), got "
          f"min {lengths_np.min()}, max {lengths_np.max()}."
      )
    longest = int(lengths_np.max())
    if longest + max_new_tokens > config.max_seq_len:
      raise ValueError(
          f"prompt length {longest} + max_new_tokens={max_new_tokens} exceeds the model's "
          f"max_seq_len={config.max_seq_len}."
      )
    if _is_concrete(prompts):
      real = np.arange(prompt_len)[None, :] < lengths_np[:, None]
      prompts_np = np.asarray(prompts)[real]
      if prompts_np.size and (prompts_np.min() < 0 or prompts_np.max() >= config.vocab_size):
        raise ValueError(
            f"prompt tokens must be in [0, vocab_size={config.vocab_size}), got "
            f"min {prompts_np.min()}, max {prompts_np.max()}."
        )
  if group_ids is None:
    group_ids = jnp.arange(num_prompts, dtype=jnp.uint32)
  group_ids = jnp.asarray(group_ids)
  if group_ids.shape != (num_prompts,):
    raise ValueError(f"group_ids must be int[{num_prompts}], got shape {group_ids.shape}.")

  cache_len = min(prompt_len + max_new_tokens - 1, config.max_seq_len)
  args = (
      key,
      model,
      prompts.astype(jnp.int32),
      prompt_lengths.astype(jnp.int32),
      group_ids.astype(jnp.uint32),
      jnp.int32(-1 if eos_id is None else eos_id),
      jnp.int32(pad_id),
  )
  static = dict(
      num_samples=int(num_samples),
      max_new_tokens=max_new_tokens,
      cache_len=cache_len,
      sampler=sampler,
      transform=transform,
  )
  return args, static
