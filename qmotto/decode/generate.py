"""Coupled decoding with a model: prefill once per prompt, then k coupled samples.

`generate` is `qmotto.sample_sequences_batched` with a real model and a KV
cache. Prompt p is group p: its k samples share the group's quasi-Monte Carlo
uniforms, which come from the same functions the model-agnostic loop uses
(`qmotto.sampling.coupling`: group keys, initial words, rotations, one step).
So with a model whose logits do not depend on the prompt, `generate` gives
exactly the tokens of `sample_sequences_batched` with the same key and
sampler, and every sample is an exact draw from the model.

Layout: prompts are right-padded, int32[P, Lp] with lengths int32[P]. Each
prompt is prefilled once (batch P, a cache of Lp slots), and that cache stays
the only copy of the prompt: the k samples of prompt p (rows p * k + i) keep
their own generated tokens in a cache of Ns = N - 1 slots, and attend to both
by cascade attention (`qmotto.models.GroupCache`), which reads a prompt's
keys and values once per decode step for its whole group. One jitted
`lax.while_loop` then feeds each sample's last token at position
len_p + t - 1 and samples token t. Everything a step needs that does not
depend on the logits (the group's point words, its rotation words) is made
before the loop.

Slices: `num_samples=GroupSlice(offset, size, group_size)` decodes k = size
sample rows per prompt holding slots [offset, offset + size) of each group
of group_size (`qmotto.decode.loop.GroupSlice`); the offset is data, so the
rounds of `sample_until_accepted` share one compilation per batch shape.
"""

from __future__ import annotations

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from qmotto.decode import checks
from qmotto.decode import loop
from qmotto.decode import memory
from qmotto.models import llama
from qmotto.models import partitioning
from qmotto.sampling import coupling
from qmotto.sampling import logit_checks
from qmotto.sampling import options as options_lib

LOGITS_SOURCE = ("the model", "Check the parameters and the prompt tokens.")


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

  def ended(self, eos_id: int) -> jax.Array:
    """bool[P, k]: the sample's last token is `eos_id` (it stopped, rather than ran out of tokens)."""
    last = jnp.take_along_axis(self.tokens, jnp.maximum(self.lengths - 1, 0)[..., None], axis=-1)[..., 0]
    return (self.lengths > 0) & (last == eos_id)


@flax.struct.dataclass
class GenerateState:
  """The loop carry of `generate_groups`. R = P * k sample rows, N = max_new_tokens.

  Attributes:
    step: int32[] the token index t being sampled.
    tokens: int32[P, k, N].
    logprobs: float32[P, k, N].
    lengths: int32[P, k].
    done: bool[P, k] the sample has emitted EOS.
    codes: uint32[P, k] carried coordinates (code mode).
    cache: the GroupCache: each prompt's cache [L, P, KV, Lp, Dh] and the
      samples' [L, R, KV, Ns, Dh] per tensor.
    invalid: bool[] some logits row had a NaN or only -inf.
  """

  step: jax.Array
  tokens: jax.Array
  logprobs: jax.Array
  lengths: jax.Array
  done: jax.Array
  codes: jax.Array
  cache: llama.GroupCache
  invalid: jax.Array


@functools.partial(jax.jit, static_argnames=("max_new_tokens", "options"))
def generate_groups(
    key: jax.Array,
    model: llama.Model,
    prompts: jax.Array,
    prompt_lengths: jax.Array,
    group_ids: jax.Array,
    slots: loop.GroupSlice,
    eos_id: jax.Array,
    pad_id: jax.Array,
    *,
    max_new_tokens: int,
    options: options_lib.SamplingOptions,
) -> tuple[GenerateOutput, jax.Array]:
  """The jitted prefill and decode loop of `generate`, on checked arguments (`prepare_generate`).

  `slots` says which k = slots.size points of each group of slots.group_size
  to decode; its sizes are static (part of its tree structure), its offset
  is data.

  Returns:
    (GenerateOutput, invalid bool[]: some logits row was invalid).
  """
  num_prompts, prompt_len = prompts.shape
  k, n = slots.size, max_new_tokens
  rows = num_prompts * k

  # Prefill each prompt once: batch P, a cache of Lp slots, logits at the last real token.
  positions = jnp.broadcast_to(jnp.arange(prompt_len, dtype=jnp.int32), prompts.shape)  # [P, Lp]
  real = positions < prompt_lengths[:, None]  # [P, Lp]
  prompts = jnp.where(real, prompts, pad_id)  # keep padding ids in the vocabulary.
  prompt_cache = partitioning.constrain_cache(
      llama.init_cache(model.config, num_prompts, prompt_len), model
  )  # [L, P, KV, Lp, Dh]
  logits, prompt_cache = model.apply(prompts, positions, prompt_cache, prompt_lengths - 1)  # [P, 1, V]
  logits = jnp.broadcast_to(logits, (num_prompts, k, logits.shape[-1]))  # [P, k, V]

  # The prompt stays once per prompt; each sample caches the N - 1 tokens it feeds back.
  cache = partitioning.constrain_cache(
      llama.init_group_cache(model.config, prompt_cache, prompt_lengths, k, memory.sample_cache_slots(n)), model
  )  # prompt [L, P, KV, Lp, Dh], samples [L, P * k, KV, Ns, Dh]
  row_lengths = jnp.repeat(prompt_lengths, k)  # [P * k]

  # The group's uniforms, exactly as in qmotto.decode.sample_sequences_batched.
  sample_ids = slots.sample_ids()  # [k] points offset .. offset + k - 1 of each group.
  points_keys, rotation_keys = coupling.group_keys(key, group_ids)
  words = coupling.initial_words(options.sampler, points_keys, slots.group_size, n, sample_ids)  # [P, k, s]
  rotations = coupling.step_rotations(options.sampler, rotation_keys, n)  # [P, N]

  def sample(state: GenerateState, logits: jax.Array) -> GenerateState:
    t = state.step
    rotation = jax.lax.dynamic_index_in_dim(rotations, t, axis=1, keepdims=False)  # [P]
    tokens, codes, invalid, logp = coupling.coupled_step(
        options, logits, words, state.codes, rotation, t
    )  # [P, k], [P, k], [], [P, k]
    active = ~state.done  # [P, k]
    tokens = jnp.where(active, tokens, pad_id)
    logp = jnp.where(active, logp, 0.0)
    return GenerateState(
        step=t + 1,
        tokens=jax.lax.dynamic_update_index_in_dim(state.tokens, tokens, t, axis=2),
        logprobs=jax.lax.dynamic_update_index_in_dim(state.logprobs, logp, t, axis=2),
        lengths=jnp.where(active, t + 1, state.lengths),
        done=state.done | (active & (tokens == eos_id)),
        codes=codes,
        cache=state.cache,
        invalid=state.invalid | invalid,
    )

  state = GenerateState(
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

  def cond(state: GenerateState) -> jax.Array:
    return (state.step < n) & ~jnp.all(state.done)

  def body(state: GenerateState) -> GenerateState:
    t = state.step
    last = jax.lax.dynamic_index_in_dim(state.tokens, t - 1, axis=2, keepdims=False)  # [P, k]
    positions = (row_lengths + t - 1)[:, None]  # [P * k, 1]
    logits, cache = model.apply(last.reshape(rows, 1), positions, state.cache)  # [P * k, 1, V]
    state = state.replace(cache=cache)
    return sample(state, logits.reshape(num_prompts, k, -1))

  state = jax.lax.while_loop(cond, body, state)
  return GenerateOutput(state.tokens, state.logprobs, state.lengths), state.invalid


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def _as_array(x):
  """A JAX array (or tracer) as it is, anything else as a host array.

  Host prompts stay on the host until the call that needs them, so a sharded
  caller uploads each device's slice only.
  """
  return x if isinstance(x, jax.Array) else np.asarray(x)


def generate(
    key: jax.Array,
    model: llama.Model,
    prompts: jax.Array,
    prompt_lengths: jax.Array,
    *,
    num_samples: int | loop.GroupSlice,
    max_new_tokens: int,
    sampling: options_lib.SamplingOptions | str = "lattice",
    eos_id: int | None = None,
    pad_id: int = 0,
    group_ids: jax.Array | None = None,
) -> GenerateOutput:
  """Draws `num_samples` coupled continuations of every prompt (or a slice of each group).

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
    num_samples: k, samples per prompt (a power of two for Sobol samplers),
      or a `GroupSlice(offset, size, group_size)`: slots [offset, offset +
      size) of each prompt's group of group_size, exactly the samples that
      this call with num_samples=group_size puts there (k = size). Any
      sampler may be sliced; the slots drawn so far form a coupled group of
      their own size only for an extensible sampler (see `GroupSlice`).
      With the same prompts, a slice holds the whole-group call's tokens
      bit for bit in the tests; the caveat above still applies (k rows
      instead of group_size per prompt is another batch layout).
    max_new_tokens: N >= 1; needs prompt_length + N <= config.max_seq_len.
    sampling: a `qmotto.SamplingOptions` (sampler, temperature, top-k,
      top-p, min-p, logit check), or a sampler name / `Sampler` with the
      default transform (temperature 1).
    eos_id: the end-of-sequence token (None: always N tokens).
    pad_id: fills prompt padding, positions after EOS and unsampled positions.
    group_ids: optional int[P] group ids (default arange(P)).

  Returns:
    GenerateOutput(tokens int32[P, k, N], logprobs float32[P, k, N], lengths int32[P, k]).
    Values are checked when the inputs are concrete; under `jax.jit` the
    caller must keep prompt_lengths in range.
  """
  arrays, static = prepare_generate(
      key, model, prompts, prompt_lengths, num_samples, max_new_tokens, sampling, eos_id, pad_id, group_ids
  )
  if model.mesh is not None or memory.device_memory_bytes() is not None:
    # Refuse up front, with the numbers, a call that cannot fit.
    mesh = model.mesh or partitioning.make_mesh(devices=jax.devices()[:1])
    memory.plan_memory(
        model.config, mesh, num_prompts=arrays[2].shape[0], num_samples=arrays[5].size,
        prompt_len=arrays[2].shape[1], max_new_tokens=static["max_new_tokens"],
    ).check()
  output, invalid = generate_groups(*arrays, **static)
  if static["options"].check_logits:
    logit_checks.raise_if_invalid(invalid, *LOGITS_SOURCE)
  return output


def prepare_generate(
    key, model, prompts, prompt_lengths, num_samples, max_new_tokens, sampling, eos_id, pad_id, group_ids
) -> tuple[tuple, dict]:
  """Checks `generate`'s arguments (same meaning) and converts them for `generate_groups`.

  Shared by `generate` and the sharded entry point
  (`qmotto.sharding.GroupSharding.generate`).

  Returns:
    (arrays, static): `generate_groups(*arrays, **static)` runs the call;
    arrays = (key, model, prompts int32, prompt_lengths int32, group_ids
    uint32, slots `GroupSlice` (a whole group for an int num_samples),
    eos_id int32 (-1 for None), pad_id int32), static = {max_new_tokens,
    options}.
  """
  if not isinstance(model, llama.Model):
    raise ValueError(f"model must be a qmotto.models.Model, got {type(model).__name__}.")
  config = model.config
  options = options_lib.as_options(sampling)
  slots = loop.as_group_slice(num_samples, options.sampler)
  max_new_tokens = options.sampler.check_length(max_new_tokens, "max_new_tokens")
  eos_id = checks.check_token_id("eos_id", eos_id, config.vocab_size, allow_none=True)
  pad_id = checks.check_token_id("pad_id", pad_id, config.vocab_size)

  prompts, prompt_lengths = _as_array(prompts), _as_array(prompt_lengths)
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
  arrays = (
      key,
      model,
      prompts.astype(np.int32),
      prompt_lengths.astype(np.int32),
      checks.check_group_ids(group_ids, num_prompts),
      slots,
      jnp.int32(-1 if eos_id is None else eos_id),
      jnp.int32(pad_id),
  )
  return arrays, dict(max_new_tokens=max_new_tokens, options=options)
