"""The per-step coupling of a group: its keys, its starting words, its rotations, one step.

Every decode loop (`qmotto.decode`: the model-agnostic one, `generate` with a
KV cache, the sharded ones) draws its tokens through these functions, so a
group's samples depend only on (key, group id) and the logits, wherever and
however the group is decoded.

Words are uint32 (`qmotto.qmc`): word x stands for the uniform x / 2**32.
  * Token mode: slot i of a group uses coordinate t of point i of the
    sampler's n-point set for token t (`initial_words` makes all of them).
  * Code mode: slot i carries one word, its coordinate c (`initial_words`,
    s = 1). Each step picks the bin holding c, rescales c into that bin,
    c <- (c - l) / p, then rotates every carried word of the group by the
    same fresh uniform word w_t (`rotation_words`), c <- c + w_t mod 2**32.
    The sum of a word and an independent uniform word is exactly uniform, so
    each sample is an exact draw at any length, and the spacing of the
    samples that share a prefix is unchanged (METHOD.md). The loops draw all
    of a group's rotations before they start (`step_rotations`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from qmotto import qmc
from qmotto.sampling import inverse_cdf
from qmotto.sampling import logit_checks
from qmotto.sampling import options as options_lib
from qmotto.sampling import samplers as samplers_lib


def group_keys(key: jax.Array, group_ids: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Per-group (points key, rotation key), each [G]: a function of (key, group id) only.

  Args:
    key: the call's PRNG key.
    group_ids: uint32[G] the groups' ids.
  """
  keys = jax.vmap(lambda g: jax.random.split(jax.random.fold_in(key, g)))(group_ids)  # [G, 2]
  return keys[:, 0], keys[:, 1]


def initial_words(
    sampler: samplers_lib.Sampler,
    points_keys: jax.Array,
    num_samples: int,
    length: int,
    sample_ids: jax.Array,
) -> jax.Array:
  """The groups' uniform words: uint32[G, n, 1] (code mode) or uint32[G, n, length] (token mode).

  Args:
    sampler: the sampler.
    points_keys: [G] per-group keys (`group_keys`).
    num_samples: N, the group size the point set is built for.
    length: number of positions (the token-mode dimension).
    sample_ids: int[n] which of the N points to make (all, or a device's slice).
  """
  s = 1 if sampler.mode == "code" else length
  return jax.vmap(lambda k: sampler.words(k, num_samples, s, sample_ids))(points_keys)


def rotation_words(rotation_keys: jax.Array, step: jax.Array) -> jax.Array:
  """uint32[G]: the shared fresh uniform word w_t of each group at step t."""
  return jax.vmap(lambda k: jax.random.bits(jax.random.fold_in(k, step), (), jnp.uint32))(rotation_keys)


def step_rotations(sampler: samplers_lib.Sampler, rotation_keys: jax.Array, length: int) -> jax.Array:
  """uint32[G, length]: column t is `rotation_words(rotation_keys, t)`, made once before a decode loop.

  Token-mode samplers rotate nothing: their columns are zeros (never read),
  so the loop body holds no random-number generation at all.
  """
  if sampler.mode != "code":
    return jnp.zeros((rotation_keys.shape[0], length), jnp.uint32)
  steps = jnp.arange(length, dtype=jnp.int32)
  return jax.vmap(lambda t: rotation_words(rotation_keys, t), out_axes=1)(steps)  # [G, length]


def coupled_step(
    options: options_lib.SamplingOptions,
    logits: jax.Array,
    words: jax.Array,
    codes: jax.Array,
    rotation: jax.Array,
    step: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """One coupled sampling step for G groups of n samples.

  Args:
    options: the sampler, the logit transform and whether to check logits.
    logits: float[G, n, V] next-token logits.
    words: uint32[G, n, s] token-mode words (ignored in code mode).
    codes: uint32[G, n] carried coordinates (ignored in token mode).
    rotation: uint32[G] this step's shared rotation (code mode).
    step: int32[] position t.

  Returns:
    tokens: int32[G, n]; codes: uint32[G, n] for the next step; invalid:
    bool[], some logits row had a NaN or only -inf (always False when
    options.check_logits is off); logprobs: float32[G, n], log-probability of
    each token under the transformed distribution (0 if greedy).
  """
  g, n, vocab = logits.shape
  sampler, transform = options.sampler, options.transform
  if sampler.mode == "code":
    u_words = codes
  else:
    u_words = jax.lax.dynamic_index_in_dim(words, step, axis=2, keepdims=False)  # [G, n]
  u = qmc.words_to_unit_float(u_words).reshape(g * n)
  flat_logits = logits.reshape(g * n, vocab)
  tokens, rescaled, logprobs = inverse_cdf.choose_tokens(flat_logits, u, transform)
  if sampler.mode == "code" and not transform.greedy:
    # Rescale into the bin, then rotate the whole group by one fresh uniform:
    # the word sum mod 2**32 is exactly uniform whatever the rescaled value.
    codes = qmc.unit_float_to_words(rescaled).reshape(g, n) + rotation[:, None]
  if options.check_logits:
    invalid = jnp.any(logit_checks.invalid_rows(flat_logits))
  else:
    invalid = jnp.bool_(False)
  return tokens.reshape(g, n), codes, invalid, logprobs.reshape(g, n)
