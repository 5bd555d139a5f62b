"""A Llama-family decoder-only transformer in Flax linen, with an explicit KV cache.

Covers Llama 2/3, SmolLM2, Mistral (sliding windows), Qwen2 (`qkv_bias=True`),
Qwen3 (`qk_norm=True`) and Gemma 3 text models ((1 + w) norms, post-norms, a
GeGLU MLP, scaled embeddings, local sliding-window layers beside global ones,
soft caps): RMSNorm, rotary embeddings in Hugging Face's "rotate_half"
(non-interleaved) convention, grouped-query attention, a gated MLP, tied or
untied embeddings.

The layers run as one `jax.lax.scan` over stacked weights (one Block applied
to each layer's slice), so the compiled program holds one layer whatever the
depth. Parameter tree (checkpoint loaders in
`qmotto.models.loading` rely on it; see `param_shapes`):

  {"embed": {"embedding": [V, D]},
   "layers": {"attn_norm": {"scale": [L, D]},
              "attn": {"q": {"kernel": [L, D, H*Dh], "bias": [L, H*Dh]},   # bias only if qkv_bias
                       "k": {"kernel": [L, D, KV*Dh], "bias": [L, KV*Dh]},
                       "v": {"kernel": [L, D, KV*Dh], "bias": [L, KV*Dh]},
                       "q_norm": {"scale": [L, Dh]},                     # only if qk_norm
                       "k_norm": {"scale": [L, Dh]},
                       "o": {"kernel": [L, H*Dh, D]}},
              "attn_post_norm": {"scale": [L, D]},                       # only if post_norms
              "mlp_norm": {"scale": [L, D]},
              "mlp": {"gate": {"kernel": [L, D, F]}, "up": {"kernel": [L, D, F]},
                      "down": {"kernel": [L, F, D]}},
              "mlp_post_norm": {"scale": [L, D]}},                       # only if post_norms
   "final_norm": {"scale": [D]},
   "lm_head": {"kernel": [D, V]}}                                      # absent if tie_embeddings

Kernels are [in, out] (a torch Linear weight transposed), stacked on a leading
layer axis. Heads are head-major as in Hugging Face: q.reshape(..., H, Dh),
and query head h uses key/value head h // (H // KV). Parameters are stored
in `param_dtype` and used in the compute `dtype`.

Shape letters: B batch, T new tokens, S cache slots (or keys), D hidden,
H query heads, KV key/value heads, G = H // KV queries per key/value head,
Dh head dim, F MLP width, V vocabulary, L layers.

Positions and the cache. Every token carries its position, and the cache
slot of a token is its position: slot j of row b holds the key/value of the
token at position j of that row. A query at position q attends to the slots
j <= q (and, in a sliding-window layer of window W, j > q - W, as Hugging
Face's masks). Prompts are right-padded: row b's real tokens are at
positions 0 .. len_b - 1, so after a prefill of a [B, T] block the padding
has written slots len_b .. T - 1, but no real query ever attends to them
before they are overwritten, because decoding writes the token at position
len_b into slot len_b before it attends. Causality by position is therefore
the only mask needed, for prefill, decoding and padding alike. Logits at
padding positions are meaningless and are to be ignored by the caller.

Groups of samples of one prompt decode with a `GroupCache`: the prompt's
cache once per prompt beside each sample's cache of generated tokens, read
by cascade attention (`_group_attention`), so a decode step reads a prompt's
keys and values once for the whole group.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from qmotto.utils import numbers

DTYPES = ("float32", "bfloat16", "float16")
_MASK_VALUE = -1e30  # Finite, so a masked score's exp is exactly 0 and never NaN.


# Ceilings far above any real model (Llama 3.1 405B: 126 layers, hidden 16384,
# MLP 53248, 128 heads, vocab 128256; Gemma 3: vocab 262144), so that a config
# with absurd sizes (a typo, a hostile file) is refused before anything is
# allocated, not after minutes of trying.
SIZE_LIMITS = {
    "vocab_size": 1 << 24,
    "hidden_size": 1 << 17,
    "intermediate_size": 1 << 20,
    "num_layers": 1 << 12,
    "num_heads": 1 << 12,
    "num_kv_heads": 1 << 12,
    "head_dim": 1 << 12,
    "max_seq_len": 1 << 24,
}
MAX_PARAMS = 10**13  # 25x the largest open dense model.


ACTIVATIONS = ("silu", "gelu_tanh")
LAYER_TYPES = ("full_attention", "sliding_attention")


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
  """Architecture of a Llama-family model (frozen and hashable: a static jit arg).

  Attributes:
    vocab_size: V.
    hidden_size: D.
    intermediate_size: F, the MLP width.
    num_layers: L.
    num_heads: H, query heads.
    num_kv_heads: KV, key/value heads; H must be a multiple of KV.
    head_dim: Dh, even (default hidden_size // num_heads; then H must divide D).
    rope_theta: rotary base (of the global layers, when there are local ones).
    rope_scaling: None (plain RoPE) or the frequency scaling as sorted
      (name, value) pairs (a dict is accepted and normalized): rope_type
      "linear" with `factor`, or "llama3" (Llama 3.1+) with `factor`,
      `low_freq_factor`, `high_freq_factor` and
      `original_max_position_embeddings`, as in Hugging Face.
    rms_norm_eps: RMSNorm epsilon, > 0.
    tie_embeddings: logits = x @ embed.T (no "lm_head" parameters).
    qkv_bias: biases on the q, k and v projections (Qwen2).
    max_seq_len: the most positions a sequence may have (prompt + generated).
    dtype: compute dtype, one of DTYPES. RMSNorm statistics, attention
      scores and softmax, and the logits are float32 whatever it is.
    param_dtype: the dtype parameters are stored in, one of DTYPES
      (independent of `dtype`: bfloat16 weights may compute in float32).
    qk_norm: an RMSNorm over the head dim on queries and keys before the
      rotary embedding (Qwen3, Gemma 3).
    norm_offset: RMSNorm multiplies by (norm_offset + scale): 0 for Llama,
      1 for Gemma (whose norm weights are stored around 0).
    post_norms: RMSNorms on the attention and MLP outputs before the
      residual adds (Gemma 2/3's "sandwich" norms).
    embed_scale: multiply the embeddings by sqrt(hidden_size) (Gemma).
    mlp_activation: "silu" (SwiGLU) or "gelu_tanh" (GeGLU, tanh-approximated GELU).
    query_pre_attn_scalar: attention scores are scaled by
      query_pre_attn_scalar ** -0.5 (Gemma); None: head_dim ** -0.5.
    sliding_window: W, the keys a sliding-window layer sees (positions
      q - W < j <= q); None: no sliding-window layers.
    layer_types: per layer, "full_attention" or "sliding_attention" (a
      tuple of length L; a list is accepted). None: every layer slides if
      `sliding_window` is set (Mistral), else none does.
    local_rope_theta: the rotary base of sliding-window layers, which use
      no rope scaling (Gemma 3); None: the same rope as the global layers.
    attn_logit_softcap: scores become cap * tanh(scores / cap); None: off.
    final_logit_softcap: the same on the logits; None: off.
  """

  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int | None = None
  rope_theta: float = 10000.0
  rope_scaling: tuple[tuple[str, Any], ...] | None = None
  rms_norm_eps: float = 1e-5
  tie_embeddings: bool = False
  qkv_bias: bool = False
  max_seq_len: int = 2048
  dtype: str = "float32"
  param_dtype: str = "float32"
  qk_norm: bool = False
  norm_offset: float = 0.0
  post_norms: bool = False
  embed_scale: bool = False
  mlp_activation: str = "silu"
  query_pre_attn_scalar: float | None = None
  sliding_window: int | None = None
  layer_types: tuple[str, ...] | None = None
  local_rope_theta: float | None = None
  attn_logit_softcap: float | None = None
  final_logit_softcap: float | None = None

  def __post_init__(self):
    # Python, NumPy and JAX scalars alike become Python numbers: the config is
    # hashable (a static jit argument) whatever a loader read.
    for name in (
        "vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads",
        "num_kv_heads", "max_seq_len",
    ):
      object.__setattr__(
          self, name,
          numbers.check_int(f"LlamaConfig.{name}", getattr(self, name), minimum=1, maximum=SIZE_LIMITS[name]),
      )
    if self.num_heads % self.num_kv_heads:
      raise ValueError(
          f"LlamaConfig: num_heads={self.num_heads} must be a multiple of "
          f"num_kv_heads={self.num_kv_heads} (grouped-query attention)."
      )
    if self.head_dim is None:
      if self.hidden_size % self.num_heads:
        raise ValueError(
            f"LlamaConfig: hidden_size={self.hidden_size} is not a multiple of "
            f"num_heads={self.num_heads}; pass head_dim explicitly."
        )
      object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)
    head_dim = numbers.check_int("LlamaConfig.head_dim", self.head_dim, minimum=2, maximum=SIZE_LIMITS["head_dim"])
    if head_dim % 2:
      raise ValueError(
          f"LlamaConfig.head_dim must be an even int >= 2 (rotary pairs), got {self.head_dim!r}."
      )
    object.__setattr__(self, "head_dim", head_dim)
    positive = dict(minimum=0.0, exclusive_minimum=True)
    for name in ("rope_theta", "rms_norm_eps"):
      object.__setattr__(self, name, numbers.check_float(f"LlamaConfig.{name}", getattr(self, name), **positive))
    for name in ("query_pre_attn_scalar", "local_rope_theta", "attn_logit_softcap", "final_logit_softcap"):
      if getattr(self, name) is not None:
        object.__setattr__(self, name, numbers.check_float(f"LlamaConfig.{name}", getattr(self, name), **positive))
    object.__setattr__(
        self, "norm_offset", numbers.check_float("LlamaConfig.norm_offset", self.norm_offset, minimum=0.0, maximum=1.0)
    )
    object.__setattr__(self, "rope_scaling", _normalize_rope_scaling(self.rope_scaling))
    for name in ("tie_embeddings", "qkv_bias", "qk_norm", "post_norms", "embed_scale"):
      if not isinstance(getattr(self, name), (bool, np.bool_)):
        raise ValueError(f"LlamaConfig.{name} must be a bool, got {getattr(self, name)!r}.")
      object.__setattr__(self, name, bool(getattr(self, name)))
    for name in ("dtype", "param_dtype"):
      if getattr(self, name) not in DTYPES:
        raise ValueError(f"LlamaConfig.{name} must be one of {DTYPES}, got {getattr(self, name)!r}.")
    if self.mlp_activation not in ACTIVATIONS:
      raise ValueError(f"LlamaConfig.mlp_activation must be one of {ACTIVATIONS}, got {self.mlp_activation!r}.")
    if self.sliding_window is not None:
      object.__setattr__(
          self, "sliding_window",
          numbers.check_int("LlamaConfig.sliding_window", self.sliding_window, minimum=1, maximum=SIZE_LIMITS["max_seq_len"]),
      )
    object.__setattr__(self, "layer_types", self._normalized_layer_types())
    if self.num_params > MAX_PARAMS:
      raise ValueError(
          f"LlamaConfig: {self.num_params:.3g} parameters (vocab_size={self.vocab_size}, "
          f"hidden_size={self.hidden_size}, intermediate_size={self.intermediate_size}, "
          f"num_layers={self.num_layers}) is beyond the supported {MAX_PARAMS:.0e}; check the config."
      )

  def _normalized_layer_types(self) -> tuple[str, ...] | None:
    """layer_types as a tuple of LAYER_TYPES of length L, or None (all full attention)."""
    types = self.layer_types
    if types is None:
      return None if self.sliding_window is None else ("sliding_attention",) * self.num_layers
    if isinstance(types, str) or not isinstance(types, (tuple, list)):
      raise ValueError(f"LlamaConfig.layer_types must be a tuple of {LAYER_TYPES}, got {types!r}.")
    types = tuple(types)
    if len(types) != self.num_layers or any(t not in LAYER_TYPES for t in types):
      raise ValueError(
          f"LlamaConfig.layer_types must hold num_layers={self.num_layers} entries from {LAYER_TYPES}, "
          f"got {list(types)}."
      )
    if "sliding_attention" in types and self.sliding_window is None:
      raise ValueError("LlamaConfig.layer_types has sliding_attention layers but sliding_window is None.")
    return None if "sliding_attention" not in types else types

  @property
  def num_params(self) -> int:
    """The parameter count this config describes (computed, nothing allocated)."""
    d, f, v = self.hidden_size, self.intermediate_size, self.vocab_size
    q, kv = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
    attention = d * q + 2 * d * kv + q * d + (q + 2 * kv if self.qkv_bias else 0)
    attention += 2 * self.head_dim if self.qk_norm else 0
    layer = attention + 3 * d * f + (4 if self.post_norms else 2) * d
    head = 0 if self.tie_embeddings else v * d
    return v * d + self.num_layers * layer + d + head

  @property
  def compute_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)

  @property
  def weight_dtype(self) -> jnp.dtype:
    """The dtype the parameters are stored in (`param_dtype` as a dtype)."""
    return jnp.dtype(self.param_dtype)

  def is_sliding(self, layer: int) -> bool:
    """Whether layer `layer` is a sliding-window (local) layer."""
    return self.layer_types is not None and self.layer_types[layer] == "sliding_attention"


@flax.struct.dataclass
class KVCache:
  """Keys and values of every layer, one slot per position (slot j = position j).

  Attributes:
    k: [L, B, KV, S, Dh] rotated keys, in the compute dtype.
    v: [L, B, KV, S, Dh] values.

  Slots sit next to the head dim, so a layer's [B, KV, S, Dh] slice is what
  the attention einsums contract over (batch dims b, k leading): no per-step
  transpose of the cache.
  """

  k: jax.Array
  v: jax.Array

  @property
  def max_len(self) -> int:
    return self.k.shape[3]

  @property
  def batch_size(self) -> int:
    return self.k.shape[1]


@flax.struct.dataclass
class GroupCache:
  """The cache of groups of samples that continue one shared prompt each.

  Cascade ("bifurcated") attention, as in Hydragen and FlashInfer: the
  prompt's keys and values are stored once per prompt, each sample holds only
  the tokens it generated, and a query attends to both, the two partial
  softmaxes merged exactly by their log-sum-exp. Row r of the batch is sample
  r % n of prompt r // n (n = rows per prompt, B = P * n), as `generate`
  lays its samples out. A decode step thus reads each prompt's cache once
  for its whole group, not once per sample, and the cache holds one copy.

  Attributes:
    prompt: KVCache [L, P, KV, Lp, Dh], the prompts' keys and values (slot j
      = position j); slots at or past a prompt's length are never attended.
    prompt_lengths: int32[P] real tokens of each prompt.
    samples: KVCache [L, B, KV, Ns, Dh], the generated tokens: slot i of row
      r holds position prompt_lengths[r // n] + i.
  """

  prompt: KVCache
  prompt_lengths: jax.Array
  samples: KVCache

  @property
  def num_prompts(self) -> int:
    return self.prompt.batch_size

  @property
  def batch_size(self) -> int:
    return self.samples.batch_size


def init_group_cache(
    config: LlamaConfig, prompt: KVCache, prompt_lengths: jax.Array, samples_per_prompt: int, max_len: int
) -> GroupCache:
  """A GroupCache over a prefilled prompt cache, with empty sample caches of `max_len` slots.

  Args:
    config: the model config.
    prompt: the prefill's KVCache [L, P, KV, Lp, Dh].
    prompt_lengths: int[P] real tokens of each prompt.
    samples_per_prompt: n, rows per prompt.
    max_len: Ns, slots per sample (the tokens a sample feeds back).
  """
  samples = init_cache(config, prompt.batch_size * samples_per_prompt, max_len)  # [L, P*n, KV, Ns, Dh]
  return GroupCache(prompt=prompt, prompt_lengths=jnp.asarray(prompt_lengths, jnp.int32), samples=samples)


def init_cache(config: LlamaConfig, batch_size: int, max_len: int) -> KVCache:
  """An all-zero KVCache for `batch_size` rows of `max_len` slots."""
  batch_size = numbers.check_int("batch_size", batch_size, minimum=1)
  max_len = numbers.check_int("max_len", max_len, minimum=1)
  if max_len > config.max_seq_len:
    raise ValueError(
        f"KV cache of max_len={max_len} slots exceeds the model's max_seq_len={config.max_seq_len}."
    )
  shape = (config.num_layers, batch_size, config.num_kv_heads, max_len, config.head_dim)
  zeros = jnp.zeros(shape, config.compute_dtype)  # [L, B, KV, S, Dh]
  return KVCache(k=zeros, v=zeros)


ROPE_SCALING_FIELDS = {
    "linear": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
}


def _normalize_rope_scaling(scaling) -> tuple[tuple[str, Any], ...] | None:
  """None, or sorted (name, value) pairs with exactly the fields of the rope type."""
  if scaling is None:
    return None
  try:
    items = dict(scaling)
  except (TypeError, ValueError):
    raise ValueError(f"LlamaConfig.rope_scaling must be None, a dict or (name, value) pairs, got {scaling!r}.") from None
  rope_type = items.pop("rope_type", None)
  if rope_type not in ROPE_SCALING_FIELDS:
    raise ValueError(
        f"LlamaConfig.rope_scaling rope_type must be one of {sorted(ROPE_SCALING_FIELDS)}, got {rope_type!r}."
    )
  needed = ROPE_SCALING_FIELDS[rope_type]
  if set(items) != set(needed):
    raise ValueError(
        f"LlamaConfig.rope_scaling of type {rope_type!r} needs exactly the fields {needed}, got {sorted(items)}."
    )
  for name, value in items.items():
    items[name] = numbers.check_float(f"LlamaConfig.rope_scaling {name}", value, minimum=0.0, exclusive_minimum=True)
  if rope_type == "llama3" and not items["high_freq_factor"] > items["low_freq_factor"]:
    raise ValueError("LlamaConfig.rope_scaling needs high_freq_factor > low_freq_factor (llama3).")
  return tuple(sorted({**{k: float(v) for k, v in items.items()}, "rope_type": rope_type}.items()))


def rope_inv_freq(config: LlamaConfig, local: bool = False) -> np.ndarray:
  """float32[Dh / 2]: 1 / theta^(2i / Dh), then the rope scaling, as Hugging Face computes them.

  Args:
    config: the model config.
    local: the frequencies of a sliding-window layer (`local_rope_theta`,
      unscaled, when the config sets it; else the global ones).
  """
  exponents = np.arange(0, config.head_dim, 2, dtype=np.int64).astype(np.float32) / config.head_dim
  if local and config.local_rope_theta is not None:
    return (1.0 / (np.float32(config.local_rope_theta) ** exponents)).astype(np.float32)
  inv_freq = 1.0 / (np.float32(config.rope_theta) ** exponents)  # float32[Dh / 2]
  if config.rope_scaling is not None:
    scaling = dict(config.rope_scaling)
    factor = np.float32(scaling["factor"])
    if scaling["rope_type"] == "linear":
      inv_freq = inv_freq / factor
    else:  # llama3: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
      old_len = np.float32(scaling["original_max_position_embeddings"])
      low, high = np.float32(scaling["low_freq_factor"]), np.float32(scaling["high_freq_factor"])
      wavelen = np.float32(2 * np.pi) / inv_freq
      scaled = np.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
      smooth = (old_len / wavelen - low) / (high - low)
      smoothed = (1 - smooth) * scaled / factor + smooth * scaled
      medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
      inv_freq = np.where(medium, smoothed, scaled)
  return np.asarray(inv_freq, np.float32)


# Models of at most this many layers run their layers unrolled (see Llama).
UNROLL_UP_TO = 4

# A window no sequence reaches: full attention as a sliding window, so that
# every layer of the scan runs the same program.
_FULL_WINDOW = np.iinfo(np.int32).max


def layer_constants(config: LlamaConfig) -> tuple[np.ndarray, np.ndarray]:
  """What differs between layers besides their weights, scanned with them.

  Returns:
    (windows int32[L]: the sliding window of each layer, or a window no
    sequence reaches for full attention; inv_freq float32[L, Dh / 2]: each
    layer's rotary frequencies).
  """
  windows = np.array(
      [config.sliding_window if config.is_sliding(i) else _FULL_WINDOW for i in range(config.num_layers)], np.int32
  )
  inv_freq = np.stack([rope_inv_freq(config, local=config.is_sliding(i)) for i in range(config.num_layers)])
  return windows, inv_freq


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: jax.Array) -> jax.Array:
  """Rotary embedding in the "rotate_half" convention.

  Args:
    x: [B, T, N, Dh] queries or keys (N heads).
    positions: int[B, T].
    inv_freq: float32[Dh / 2].

  Returns:
    [B, T, N, Dh], dtype of x.
  """
  angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, T, Dh/2]
  angles = jnp.concatenate([angles, angles], axis=-1)  # [B, T, Dh]
  cos = jnp.cos(angles).astype(x.dtype)[:, :, None, :]  # [B, T, 1, Dh]
  sin = jnp.sin(angles).astype(x.dtype)[:, :, None, :]  # [B, T, 1, Dh]
  x1, x2 = jnp.split(x, 2, axis=-1)  # [B, T, N, Dh/2] each
  rotated = jnp.concatenate([-x2, x1], axis=-1)  # [B, T, N, Dh]
  return x * cos + rotated * sin


class RMSNorm(nn.Module):
  """x * rsqrt(mean(x^2) + eps) * (offset + scale), the statistics in float32 (as HF).

  With offset 0 (Llama) the normalized x is cast to the compute dtype before
  the scale multiplies it, as Hugging Face's LlamaRMSNorm; with offset 1
  (Gemma) the product is taken in float32 and then cast, as Gemma3RMSNorm.
  """

  eps: float
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  offset: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    init = nn.initializers.zeros if self.offset else nn.initializers.ones
    scale = self.param("scale", init, (x.shape[-1],), self.param_dtype)  # [D]
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    if self.offset:
      return (normed * (self.offset + scale.astype(jnp.float32))).astype(self.dtype)
    return normed.astype(self.dtype) * scale.astype(self.dtype)


def _norm(cfg: LlamaConfig, name: str) -> RMSNorm:
  return RMSNorm(cfg.rms_norm_eps, cfg.compute_dtype, cfg.weight_dtype, cfg.norm_offset, name=name)


def _dense(cfg: LlamaConfig, features: int, name: str, use_bias: bool = False, dtype=None) -> nn.Dense:
  return nn.Dense(
      features,
      use_bias=use_bias,
      dtype=cfg.compute_dtype if dtype is None else dtype,
      param_dtype=cfg.weight_dtype,
      kernel_init=nn.initializers.normal(0.02),
      name=name,
  )


def _softcap(x: jax.Array, cap: float | None) -> jax.Array:
  return x if cap is None else jnp.tanh(x / cap) * cap


class Attention(nn.Module):
  """Grouped-query attention with rotary embeddings and an optional KV cache."""

  config: LlamaConfig

  @nn.compact
  def __call__(
      self,
      x: jax.Array,
      positions: jax.Array,
      cache: KVCache | GroupCache | None,
      layer: jax.Array,
      window: jax.Array,
      inv_freq: jax.Array,
  ) -> tuple[jax.Array, KVCache | GroupCache | None]:
    """One layer's attention.

    Args:
      x: [B, T, D].
      positions: int32[B, T].
      cache: None, the KVCache of every layer [L, B, KV, S, Dh], or a
        GroupCache (prompt once per group; see `_group_attention`).
      layer: int32[] this layer's index into the cache.
      window: int32[] this layer's sliding window (see `layer_constants`).
      inv_freq: float32[Dh / 2] this layer's rotary frequencies.

    Returns:
      ([B, T, D], the cache with this layer's new keys and values written).
    """
    cfg = self.config
    dtype = cfg.compute_dtype
    b, t, _ = x.shape
    h, kv, dh = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    g = h // kv
    q = _dense(cfg, h * dh, "q", cfg.qkv_bias)(x).reshape(b, t, h, dh)  # [B, T, H, Dh]
    k = _dense(cfg, kv * dh, "k", cfg.qkv_bias)(x).reshape(b, t, kv, dh)  # [B, T, KV, Dh]
    v = _dense(cfg, kv * dh, "v", cfg.qkv_bias)(x).reshape(b, t, kv, dh)  # [B, T, KV, Dh]
    if cfg.qk_norm:
      q = _norm(cfg, "q_norm")(q)  # [B, T, H, Dh]
      k = _norm(cfg, "k_norm")(k)  # [B, T, KV, Dh]
    q = apply_rope(q, positions, inv_freq)  # [B, T, H, Dh]
    k = apply_rope(k, positions, inv_freq)  # [B, T, KV, Dh]

    scale = dh**-0.5 if cfg.query_pre_attn_scalar is None else cfg.query_pre_attn_scalar**-0.5
    if isinstance(cache, GroupCache):
      out, cache = _group_attention(cfg, q, k, v, positions, cache, layer, window, np.float32(scale))
      return _dense(cfg, cfg.hidden_size, "o")(out.reshape(b, t, h * dh)), cache  # [B, T, D]
    if cache is None:
      keys, values = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)  # [B, KV, S=T, Dh]
      key_positions = positions  # [B, S]
    else:
      cache = _write(cache, layer, positions, k, v)  # slot = position.
      keys, values = cache.k[layer], cache.v[layer]  # [B, KV, S, Dh]
      key_positions = jnp.arange(keys.shape[2])[None, :]  # [1, S]

    q = q.reshape(b, t, kv, g, dh)  # [B, T, KV, G, Dh]: query head h = kv * G + g.
    scores = jnp.einsum(
        "btkgd,bksd->bkgts", q, keys.astype(dtype), preferred_element_type=jnp.float32
    )  # [B, KV, G, T, S] float32
    scores = _softcap(scores * np.float32(scale), cfg.attn_logit_softcap)
    offset = positions[:, :, None] - key_positions[:, None, :]  # [B, T, S]: query minus key position.
    visible = (offset >= 0) & (offset < window)  # [B, T, S]
    scores = jnp.where(visible[:, None, None, :, :], scores, _MASK_VALUE)  # [B, KV, G, T, S]
    probs = jax.nn.softmax(scores, axis=-1).astype(dtype)  # [B, KV, G, T, S]
    out = jnp.einsum("bkgts,bksd->btkgd", probs, values.astype(dtype))  # [B, T, KV, G, Dh]
    out = out.reshape(b, t, h * dh)  # [B, T, H*Dh]
    return _dense(cfg, cfg.hidden_size, "o")(out), cache  # [B, T, D]


def _write(cache: KVCache, layer: jax.Array, slots: jax.Array, k: jax.Array, v: jax.Array) -> KVCache:
  """The cache with layer `layer`'s slots[b, t] of row b set to k/v [B, T, KV, Dh].

  Out-of-range slots are dropped (the caller checks bounds). The index
  arrays (layer, rows, slots) are split by the KV slice, so the updated
  block is [B, T, KV, Dh], the layout of k and v. The cache rides in the
  layer scan's carry, so this writes T slots in place rather than copying a
  layer's cache.
  """
  rows = jnp.arange(k.shape[0])[:, None]  # [B, 1]
  return KVCache(
      k=cache.k.at[layer, rows, :, slots].set(k.astype(cache.k.dtype), mode="drop"),  # [L, B, KV, S, Dh]
      v=cache.v.at[layer, rows, :, slots].set(v.astype(cache.v.dtype), mode="drop"),  # [L, B, KV, S, Dh]
  )


def _partial_softmax(scores: jax.Array, visible: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One part of a softmax over keys split in parts: (exp(scores - m), m, l) over the last axis.

  Masked scores get a finite -1e30, so a part whose keys are all masked has
  m = -1e30 and drops out of the merge (its weight exp(m - max m) is 0),
  provided another part has a visible key.

  Returns:
    (float32[..., S] unnormalised probabilities, m float32[...] the max,
    l float32[...] the sum of the probabilities).
  """
  scores = jnp.where(visible, scores, _MASK_VALUE)
  m = jnp.max(scores, axis=-1)
  e = jnp.exp(scores - m[..., None])
  return e, m, jnp.sum(e, axis=-1)


def _group_attention(
    cfg: LlamaConfig,
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    positions: jax.Array,
    cache: GroupCache,
    layer: jax.Array,
    window: jax.Array,
    scale: np.float32,
) -> tuple[jax.Array, GroupCache]:
  """Cascade attention: each query attends to its prompt's cache (once per group) and its own.

  The prompt part is one matmul per (prompt, key/value head) with all n
  samples' queries stacked (n * T * G rows against Lp keys), so the prompt's
  keys and values are read once per group; the sample part is the usual
  per-row attention over the generated tokens. The two partial softmaxes
  (max m, sum l, unnormalised output o) are merged exactly:
  out = (o1 e^{m1 - m} + o2 e^{m2 - m}) / (l1 e^{m1 - m} + l2 e^{m2 - m}),
  m = max(m1, m2).

  Args:
    cfg: the config.
    q: [B, T, H, Dh] rotated queries; k, v: [B, T, KV, Dh] rotated keys, values.
    positions: int32[B, T], all at or past the row's prompt length.
    cache: the GroupCache; the new keys and values go to the sample slots
      positions - prompt length.
    layer, window: this layer's index and sliding window.
    scale: the score scale.

  Returns:
    ([B, T, H, Dh] in the compute dtype, the cache with this layer's tokens written).
  """
  dtype = cfg.compute_dtype
  b, t, h, dh = q.shape
  kv = cfg.num_kv_heads
  g = h // kv
  p = cache.num_prompts
  n = b // p
  row_prompt_lengths = jnp.repeat(cache.prompt_lengths, n, total_repeat_length=b)  # [B]
  samples = _write(cache.samples, layer, positions - row_prompt_lengths[:, None], k, v)
  cache = cache.replace(samples=samples)

  # The prompt part: keys [P, KV, Lp, Dh], every sample of the group at once.
  prompt_keys, prompt_values = cache.prompt.k[layer], cache.prompt.v[layer]  # [P, KV, Lp, Dh]
  q_groups = q.reshape(p, n, t, kv, g, dh)  # [P, n, T, KV, G, Dh]
  scores = jnp.einsum(
      "pntkgd,pksd->pkntgs", q_groups, prompt_keys.astype(dtype), preferred_element_type=jnp.float32
  )  # [P, KV, n, T, G, Lp] float32
  scores = _softcap(scores * scale, cfg.attn_logit_softcap)
  key_positions = jnp.arange(prompt_keys.shape[2])  # [Lp]
  offset = positions.reshape(p, n, t)[..., None] - key_positions  # [P, n, T, Lp]
  visible = (key_positions < cache.prompt_lengths[:, None, None, None]) & (offset >= 0) & (offset < window)
  e, m_prompt, l_prompt = _partial_softmax(scores, visible[:, None, :, :, None, :])  # [P, KV, n, T, G, (Lp)]
  o_prompt = jnp.einsum(
      "pkntgs,pksd->pntkgd", e.astype(dtype), prompt_values.astype(dtype), preferred_element_type=jnp.float32
  ).reshape(b, t, kv, g, dh)  # [B, T, KV, G, Dh] float32
  m_prompt = m_prompt.transpose(0, 2, 3, 1, 4).reshape(b, t, kv, g)  # [B, T, KV, G]
  l_prompt = l_prompt.transpose(0, 2, 3, 1, 4).reshape(b, t, kv, g)  # [B, T, KV, G]

  # The sample part: each row's own generated tokens, keys [B, KV, Ns, Dh].
  sample_keys, sample_values = samples.k[layer], samples.v[layer]  # [B, KV, Ns, Dh]
  scores = jnp.einsum(
      "btkgd,bksd->bktgs", q.reshape(b, t, kv, g, dh), sample_keys.astype(dtype), preferred_element_type=jnp.float32
  )  # [B, KV, T, G, Ns] float32
  scores = _softcap(scores * scale, cfg.attn_logit_softcap)
  key_positions = row_prompt_lengths[:, None] + jnp.arange(sample_keys.shape[2])  # [B, Ns]
  offset = positions[:, :, None] - key_positions[:, None, :]  # [B, T, Ns]
  visible = (offset >= 0) & (offset < window)  # [B, T, Ns]: the query's own token always.
  e, m_sample, l_sample = _partial_softmax(scores, visible[:, None, :, None, :])  # [B, KV, T, G, (Ns)]
  o_sample = jnp.einsum(
      "bktgs,bksd->btkgd", e.astype(dtype), sample_values.astype(dtype), preferred_element_type=jnp.float32
  )  # [B, T, KV, G, Dh] float32
  m_sample = m_sample.transpose(0, 2, 1, 3)  # [B, T, KV, G]
  l_sample = l_sample.transpose(0, 2, 1, 3)  # [B, T, KV, G]

  m = jnp.maximum(m_prompt, m_sample)  # [B, T, KV, G]
  w_prompt, w_sample = jnp.exp(m_prompt - m), jnp.exp(m_sample - m)  # [B, T, KV, G]
  out = o_prompt * w_prompt[..., None] + o_sample * w_sample[..., None]  # [B, T, KV, G, Dh]
  out = out / (l_prompt * w_prompt + l_sample * w_sample)[..., None]
  return out.astype(dtype).reshape(b, t, h, dh), cache


class MLP(nn.Module):
  """A gated MLP: down(act(gate(x)) * up(x)), SwiGLU or GeGLU."""

  config: LlamaConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    gate = _dense(cfg, cfg.intermediate_size, "gate")(x)  # [B, T, F]
    up = _dense(cfg, cfg.intermediate_size, "up")(x)  # [B, T, F]
    act = nn.silu(gate) if cfg.mlp_activation == "silu" else nn.gelu(gate, approximate=True)
    return _dense(cfg, cfg.hidden_size, "down")(act * up)  # [B, T, D]


class Block(nn.Module):
  """One decoder layer, the body of the scan over layers.

  Pre-norm: x + attn(norm(x)), then h + mlp(norm(h)); with `post_norms`
  the attention and MLP outputs are normed too before each residual add.
  The carry is (x [B, T, D], cache or None); the scanned inputs are the
  layer's index, window and rotary frequencies (`layer_constants`).
  """

  config: LlamaConfig

  @nn.compact
  def __call__(self, carry, layer_inputs, positions: jax.Array):
    cfg = self.config
    x, cache = carry
    layer, window, inv_freq = layer_inputs
    attn_out, cache = Attention(cfg, name="attn")(_norm(cfg, "attn_norm")(x), positions, cache, layer, window, inv_freq)
    if cfg.post_norms:
      attn_out = _norm(cfg, "attn_post_norm")(attn_out)
    x = x + attn_out  # [B, T, D]
    mlp_out = MLP(cfg, name="mlp")(_norm(cfg, "mlp_norm")(x))  # [B, T, D]
    if cfg.post_norms:
      mlp_out = _norm(cfg, "mlp_post_norm")(mlp_out)
    return (x + mlp_out, cache), None


def _check_cache_shape(cfg: LlamaConfig, cache: KVCache, rows: int, tokens: int, name: str) -> None:
  if cache.k.shape != (cfg.num_layers, rows, cfg.num_kv_heads, cache.max_len, cfg.head_dim):
    raise ValueError(
        f"{name}.k has shape {cache.k.shape}; expected "
        f"{(cfg.num_layers, rows, cfg.num_kv_heads, 'S', cfg.head_dim)} for a batch of {rows}."
    )
  if tokens > cache.max_len:
    raise ValueError(f"{tokens} tokens do not fit a KV cache of max_len={cache.max_len} slots.")


def _init_stacked_layers(key: jax.Array, block: "Block", layer_inputs, hidden_size: int, dtype) -> dict:
  """Every layer's parameters stacked on a leading L axis: Block.init, vmapped over L keys."""
  num_layers = layer_inputs[0].shape[0]
  x = jnp.zeros((1, 1, hidden_size), dtype)  # [B=1, T=1, D]
  positions = jnp.zeros((1, 1), jnp.int32)

  def init_one(key, inputs):
    return block.init(key, (x, None), inputs, positions)["params"]

  return jax.vmap(init_one)(jax.random.split(key, num_layers), layer_inputs)


class Llama(nn.Module):
  """The decoder. Call as

    logits, cache = Llama(config).apply({"params": params}, tokens, positions, cache)

  Args (of __call__):
    tokens: int32[B, T].
    positions: int32[B, T] position of every token (default arange(T) per row).
    cache: None for a plain forward pass (causal attention within `tokens`),
      or a KVCache [L, B, KV, S, Dh]: the new keys/values are written to the
      slots `positions`, and each query attends to the slots <= its position;
      or a GroupCache (rows = P prompts x n samples, positions past the
      prompts): the prompt's cache is read once per group (cascade attention).
    logits_at: optional int32[B]: compute logits only at index logits_at[b]
      of row b (e.g. the last prompt token), giving logits [B, 1, V].

  Returns:
    logits float32[B, T, V] (or [B, 1, V]), computed in float32 from the
    final hidden state, and the updated cache (None if none given).
  """

  config: LlamaConfig

  @nn.compact
  def __call__(
      self,
      tokens: jax.Array,
      positions: jax.Array | None = None,
      cache: KVCache | GroupCache | None = None,
      logits_at: jax.Array | None = None,
  ) -> tuple[jax.Array, KVCache | GroupCache | None]:
    cfg = self.config
    dtype = cfg.compute_dtype
    if tokens.ndim != 2:
      raise ValueError(f"tokens must be int[B, T], got shape {tokens.shape}.")
    b, t = tokens.shape
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    if positions.shape != (b, t):
      raise ValueError(f"positions must have the shape of tokens {(b, t)}, got {positions.shape}.")
    if isinstance(cache, GroupCache):
      _check_cache_shape(cfg, cache.samples, b, t, "cache.samples")
      _check_cache_shape(cfg, cache.prompt, cache.num_prompts, 0, "cache.prompt")
      if b % cache.num_prompts or cache.prompt_lengths.shape != (cache.num_prompts,):
        raise ValueError(
            f"a GroupCache of {cache.num_prompts} prompts (prompt_lengths of shape "
            f"{cache.prompt_lengths.shape}) needs a batch that is a multiple of it, got {b} rows."
        )
    elif cache is not None:
      _check_cache_shape(cfg, cache, b, t, "cache")
    elif t > cfg.max_seq_len:
      raise ValueError(f"sequence length {t} exceeds the model's max_seq_len={cfg.max_seq_len}.")

    embed = nn.Embed(
        cfg.vocab_size,
        cfg.hidden_size,
        dtype=dtype,
        param_dtype=cfg.weight_dtype,
        embedding_init=nn.initializers.normal(0.02),
        name="embed",
    )
    x = embed(tokens)  # [B, T, D]
    if cfg.embed_scale:
      # As Gemma: sqrt(D) rounded to the weights' dtype, then multiplied.
      x = x * jnp.asarray(cfg.hidden_size**0.5, cfg.weight_dtype).astype(dtype)
    windows, inv_freq = layer_constants(cfg)
    layer_inputs = (jnp.arange(cfg.num_layers, dtype=jnp.int32), jnp.asarray(windows), jnp.asarray(inv_freq))
    # One Block, applied functionally to each layer's slice of the stacked
    # parameters: traced once, whatever the depth (Flax's nn.scan traces its
    # body twice).
    block = Block(cfg, parent=None)
    layer_params = self.param("layers", _init_stacked_layers, block, layer_inputs, x.shape[-1], dtype)

    def run_layer(carry, params_and_inputs):
      params, inputs = params_and_inputs
      return block.apply({"params": params}, carry, inputs, positions)

    carry = (x, cache)
    if cfg.num_layers <= UNROLL_UP_TO:
      # Shallow models are unrolled: no loop overhead per step, and their
      # compile time is small anyway; deep ones keep one loop body, so that
      # compile time does not grow with depth.
      for i in range(cfg.num_layers):
        carry, _ = run_layer(carry, jax.tree.map(lambda a, i=i: a[i], (layer_params, layer_inputs)))
    else:
      carry, _ = jax.lax.scan(run_layer, carry, (layer_params, layer_inputs))
    x, cache = carry  # [B, T, D]
    if logits_at is not None:
      x = jnp.take_along_axis(x, logits_at.astype(jnp.int32)[:, None, None], axis=1)  # [B, 1, D]
    x = _norm(cfg, "final_norm")(x).astype(jnp.float32)  # [B, T, D]
    # The logits are computed in float32 whatever the compute dtype: they set
    # the sampling distribution, and bfloat16 logits would be coarse (steps of
    # 0.125 at |logit| ~ 20).
    if cfg.tie_embeddings:
      logits = jnp.einsum("btd,vd->btv", x, embed.embedding.astype(jnp.float32))  # [B, T, V]
    else:
      logits = _dense(cfg, cfg.vocab_size, "lm_head", dtype=jnp.float32)(x)  # [B, T, V]
    return _softcap(logits, cfg.final_logit_softcap), cache


@flax.struct.dataclass
class Model:
  """A model: its config (static) and parameters (a pytree), itself a pytree.

  Passing a Model through `jax.jit` traces the parameters and keys the
  compilation on the config (and mesh) only, so new weights of the same
  shapes reuse it.
  """

  config: LlamaConfig = flax.struct.field(pytree_node=False)
  params: Any
  # The ("data", "model") mesh the parameters are sharded over (see
  # `qmotto.models.partitioning`), or None for a model on one device.
  mesh: Any = flax.struct.field(pytree_node=False, default=None)

  @property
  def module(self) -> Llama:
    return Llama(self.config)

  def apply(self, tokens, positions=None, cache=None, logits_at=None):
    """Llama.__call__ with these parameters: (logits, cache)."""
    return self.module.apply({"params": self.params}, tokens, positions, cache, logits_at)


@functools.partial(jax.jit, static_argnums=0)
def _init_params(config: LlamaConfig, key: jax.Array) -> dict:
  return Llama(config).init(key, jnp.zeros((1, 1), jnp.int32))["params"]


def init_params(config: LlamaConfig, key: jax.Array) -> dict:
  """Random parameters in `config.param_dtype` (normal(0.02) kernels and embedding, unit norms)."""
  if not isinstance(config, LlamaConfig):
    raise ValueError(f"config must be a LlamaConfig, got {type(config).__name__}.")
  return _init_params(config, key)


def init_model(config: LlamaConfig, key: jax.Array) -> Model:
  """A Model with `init_params` weights."""
  return Model(config=config, params=init_params(config, key))


def param_shapes(config: LlamaConfig) -> dict:
  """The parameter tree of `config` as nested dicts of shape tuples (no compute)."""
  abstract = jax.eval_shape(_init_params, config, jax.random.key(0))
  return jax.tree.map(lambda x: tuple(x.shape), abstract)


def _as_model(model) -> Model:
  if isinstance(model, Model):
    return model
  if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], LlamaConfig):
    return Model(config=model[0], params=model[1])
  raise ValueError(
      f"model must be a qmotto.models.Model or a (LlamaConfig, params) pair, got {type(model).__name__}."
  )


@jax.jit
def _forward_logits(model: Model, tokens: jax.Array) -> jax.Array:
  return model.apply(tokens)[0]


def forward_logits(model: Model | tuple[LlamaConfig, Any], tokens: jax.Array) -> jax.Array:
  """The plain full forward pass (causal, no cache): float32[B, L, V].

  Args:
    model: a Model, or a (LlamaConfig, params) pair.
    tokens: int[B, L], positions 0 .. L - 1 (right padding does not affect
      the logits of the real tokens before it).
  """
  model = _as_model(model)
  tokens = jnp.asarray(tokens)
  if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
    raise ValueError(f"tokens must be int[B, L], got {tokens.dtype}{list(tokens.shape)}.")
  if tokens.shape[1] > model.config.max_seq_len:
    raise ValueError(
        f"sequence length {tokens.shape[1]} exceeds the model's max_seq_len={model.config.max_seq_len}."
    )
  return _forward_logits(model, tokens.astype(jnp.int32))
