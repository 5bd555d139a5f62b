"""Tests of the Llama model: config, parameter layout, cache vs full forward."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qmotto import models

from . import helpers


# --- Config -------------------------------------------------------------------


def test_config_defaults_and_hashable():
  cfg = helpers.tiny_config()
  assert cfg.head_dim == 8  # hidden_size // num_heads.
  assert (cfg.rope_theta, cfg.rms_norm_eps, cfg.max_seq_len, cfg.dtype) == (10000.0, 1e-5, 32, "float32")
  assert not cfg.tie_embeddings and not cfg.qkv_bias
  assert hash(cfg) == hash(helpers.tiny_config()) and cfg == helpers.tiny_config()
  assert helpers.tiny_config(head_dim=16).head_dim == 16
  with pytest.raises(dataclasses.FrozenInstanceError):
    cfg.vocab_size = 3


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(num_kv_heads=3), "num_heads=4 must be a multiple of num_kv_heads=3"),
        (dict(vocab_size=0), r"vocab_size must be an int in \[1, "),
        (dict(num_layers=1.5), r"num_layers must be an int in \[1, "),
        (dict(hidden_size=True), r"hidden_size must be an int in \[1, "),
        (dict(max_seq_len=-4), r"max_seq_len must be an int in \[1, "),
        (dict(hidden_size=30), "hidden_size=30 is not a multiple of num_heads=4"),
        (dict(head_dim=7), "head_dim must be an even int"),
        (dict(rope_theta=0.0), "rope_theta must be a finite float > 0"),
        (dict(rms_norm_eps=float("nan")), "rms_norm_eps must be a finite float > 0"),
        (dict(tie_embeddings="yes"), "tie_embeddings must be a bool"),
        (dict(dtype="int8"), "dtype must be one of"),
    ],
)
def test_bad_config(overrides, match):
  with pytest.raises(ValueError, match=match):
    helpers.tiny_config(**overrides)


def test_hidden_size_need_not_divide_with_explicit_head_dim():
  assert helpers.tiny_config(hidden_size=30, head_dim=8).head_dim == 8


# --- Parameter layout -----------------------------------------------------------


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_param_layout_is_exact(tie, bias):
  cfg = helpers.tiny_config(tie_embeddings=tie, qkv_bias=bias, head_dim=16, intermediate_size=48)
  d, v, f, h, kv, dh = 32, 50, 48, 4, 2, 16

  def proj(out):
    return {"kernel": (d, out), "bias": (out,)} if bias else {"kernel": (d, out)}

  layer = {
      "attn_norm": {"scale": (d,)},
      "attn": {"q": proj(h * dh), "k": proj(kv * dh), "v": proj(kv * dh), "o": {"kernel": (h * dh, d)}},
      "mlp_norm": {"scale": (d,)},
      "mlp": {"gate": {"kernel": (d, f)}, "up": {"kernel": (d, f)}, "down": {"kernel": (f, d)}},
  }
  stacked = jax.tree.map(lambda shape: (2, *shape), layer, is_leaf=lambda x: isinstance(x, tuple))  # L = 2 leads.
  expected = {"embed": {"embedding": (v, d)}, "layers": stacked, "final_norm": {"scale": (d,)}}
  if not tie:
    expected["lm_head"] = {"kernel": (d, v)}
  assert models.param_shapes(cfg) == expected


def test_init_params_matches_layout_and_dtype():
  cfg = helpers.tiny_config(num_layers=1, tie_embeddings=True)
  params = models.init_params(cfg, jax.random.key(0))
  assert jax.tree.map(lambda x: tuple(x.shape), params) == models.param_shapes(cfg)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
  np.testing.assert_array_equal(params["final_norm"]["scale"], 1.0)


# --- Forward pass ---------------------------------------------------------------


def _numpy_forward(cfg, p, tokens):
  """An independent NumPy float64 forward pass, written from the HF definitions."""
  p = jax.tree.map(lambda x: np.asarray(x, np.float64), p)
  b, t = tokens.shape
  h, kv, dh = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim

  def norm(x, scale):
    return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + cfg.rms_norm_eps) * scale

  def dense(x, layer):
    return x @ layer["kernel"] + layer.get("bias", 0.0)

  inv_freq = 1.0 / cfg.rope_theta ** (np.arange(0, dh, 2) / dh)
  ang = np.arange(t)[:, None] * inv_freq  # [T, Dh/2]
  cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

  def rope(x):  # [B, N, T, Dh]
    half = dh // 2
    return x * cos + np.concatenate([-x[..., half:], x[..., :half]], -1) * sin

  x = p["embed"]["embedding"][tokens]
  causal = np.tril(np.ones((t, t), bool))
  for i in range(cfg.num_layers):
    lp = jax.tree.map(lambda x: x[i], p["layers"])
    y = norm(x, lp["attn_norm"]["scale"])
    q = rope(dense(y, lp["attn"]["q"]).reshape(b, t, h, dh).transpose(0, 2, 1, 3))
    k = rope(dense(y, lp["attn"]["k"]).reshape(b, t, kv, dh).transpose(0, 2, 1, 3))
    v = dense(y, lp["attn"]["v"]).reshape(b, t, kv, dh).transpose(0, 2, 1, 3)
    k, v = np.repeat(k, h // kv, axis=1), np.repeat(v, h // kv, axis=1)  # HF repeat_kv.
    s = np.where(causal, q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh), -np.inf)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = (a @ v).transpose(0, 2, 1, 3).reshape(b, t, h * dh)
    x = x + dense(o, lp["attn"]["o"])
    y = norm(x, lp["mlp_norm"]["scale"])
    g = dense(y, lp["mlp"]["gate"])
    x = x + dense(g / (1 + np.exp(-g)) * dense(y, lp["mlp"]["up"]), lp["mlp"]["down"])
  x = norm(x, p["final_norm"]["scale"])
  return x @ (p["embed"]["embedding"].T if cfg.tie_embeddings else p["lm_head"]["kernel"])


@pytest.mark.parametrize("tie, bias", [(False, False), (True, True)])
def test_forward_matches_numpy_reference(tie, bias):
  model = helpers.random_model(1, tie_embeddings=tie, qkv_bias=bias, rope_theta=100.0)
  tokens = np.random.default_rng(0).integers(0, 50, (2, 9))
  logits = models.forward_logits(model, tokens)
  assert logits.shape == (2, 9, 50) and logits.dtype == jnp.float32
  np.testing.assert_allclose(logits, _numpy_forward(model.config, model.params, tokens), atol=2e-4, rtol=1e-4)


def test_forward_logits_accepts_config_params_pair_and_is_causal():
  model = helpers.random_model(2)
  tokens = np.random.default_rng(1).integers(0, 50, (2, 8))
  a = models.forward_logits(model, tokens)
  b = models.forward_logits((model.config, model.params), tokens)
  np.testing.assert_array_equal(a, b)
  changed = tokens.copy()
  changed[:, 5:] = 0  # later tokens (e.g. right padding) leave earlier logits alone.
  c = models.forward_logits(model, changed)
  np.testing.assert_allclose(a[:, :5], c[:, :5], atol=1e-6)
  assert not np.allclose(a[:, 5:], c[:, 5:])


def test_forward_logits_bad_input():
  model = helpers.random_model(0)
  with pytest.raises(ValueError, match="sequence length 33 exceeds the model's max_seq_len=32"):
    models.forward_logits(model, np.zeros((1, 33), np.int32))
  with pytest.raises(ValueError, match=r"tokens must be int\[B, L\]"):
    models.forward_logits(model, np.zeros((4,), np.int32))
  with pytest.raises(ValueError, match="model must be a qmotto.models.Model"):
    models.forward_logits(model.params, np.zeros((1, 3), np.int32))


_apply = jax.jit(lambda model, tokens, positions, cache: model.apply(tokens, positions, cache))


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_cached_prefill_and_decoding_match_full_forward(tie, bias):
  """Right-padded prompts of different lengths (GQA, H=4, KV=2), prefilled in
  two chunks, then decoded one token at a time with per-row positions: the
  logits equal the full forward pass at every real position."""
  model = helpers.random_model(3, tie_embeddings=tie, qkv_bias=bias)
  rng = np.random.default_rng(4)
  total, prompt_len = 12, 8
  seqs = rng.integers(0, 50, (3, total))  # each row's real tokens.
  lengths = np.array([3, 8, 5])
  full = np.asarray(models.forward_logits(model, seqs))  # [B, total, V]

  prompts = np.where(np.arange(prompt_len) < lengths[:, None], seqs[:, :prompt_len], 49)  # garbage padding.
  positions = np.broadcast_to(np.arange(prompt_len), (3, prompt_len))
  cache = models.init_cache(model.config, 3, total)
  assert cache.k.shape == (2, 3, 2, total, 8) and cache.max_len == total  # [L, B, KV, S, Dh]
  first, cache = _apply(model, prompts[:, :4], positions[:, :4], cache)  # chunk 1: positions 0-3.
  second, cache = _apply(model, prompts[:, 4:], positions[:, 4:], cache)  # chunk 2: positions 4-7.
  prefill = np.concatenate([first, second], axis=1)
  for row, n in enumerate(lengths):
    # float32 sums over 8 and over 12 key slots, in a different order: a few 1e-5.
    np.testing.assert_allclose(prefill[row, :n], full[row, :n], atol=1e-4, rtol=1e-5)

  for step in range(total - lengths.min()):
    pos = np.minimum(lengths + step, total - 1)  # [B] per-row positions (the longest row repeats its last).
    logits, cache = _apply(model, seqs[np.arange(3), pos][:, None], pos[:, None], cache)
    np.testing.assert_allclose(logits[:, 0], full[np.arange(3), pos], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        # Sliding windows that cut into the prompt as decoding goes on, beside
        # a global layer; soft caps on scores and logits; 4 layers (unrolled).
        dict(num_layers=4, sliding_window=5, layer_types=("sliding_attention", "full_attention") * 2,
             attn_logit_softcap=20.0, final_logit_softcap=15.0, local_rope_theta=100.0),
        # More than UNROLL_UP_TO layers: the scan loop carries the GroupCache.
        dict(num_layers=6, sliding_window=7),
    ],
    ids=["full", "windows_softcap", "scan"],
)
def test_group_cache_equals_repeated_cache(overrides):
  """Cascade attention: a GroupCache (each prompt once, P = 2, beside n = 3
  sample caches) gives the logits of the plain cache with every prompt
  repeated to its samples' rows, step after step, for prompts of different
  lengths and samples that feed different tokens."""
  model = helpers.random_model(5, **overrides)
  rng = np.random.default_rng(6)
  num_prompts, n, prompt_len, steps = 2, 3, 8, 9
  lengths = np.array([3, 8])
  prompts = rng.integers(0, 50, (num_prompts, prompt_len))
  positions = np.broadcast_to(np.arange(prompt_len), (num_prompts, prompt_len))
  prompt_cache = models.init_cache(model.config, num_prompts, prompt_len)
  _, prompt_cache = _apply(model, prompts, positions, prompt_cache)

  group = models.init_group_cache(model.config, prompt_cache, lengths, n, steps)
  assert group.prompt.k.shape == (model.config.num_layers, 2, 2, prompt_len, 8)  # [L, P, KV, Lp, Dh]
  assert group.samples.k.shape == (model.config.num_layers, 6, 2, steps, 8)  # [L, P * n, KV, Ns, Dh]

  def widen(x):  # [L, P, KV, Lp, Dh] -> [L, P * n, KV, Lp + steps, Dh]: the repeated reference.
    return np.pad(np.repeat(np.asarray(x), n, axis=1), ((0, 0), (0, 0), (0, 0), (0, steps), (0, 0)))

  repeated = models.KVCache(k=widen(prompt_cache.k), v=widen(prompt_cache.v))
  row_lengths = np.repeat(lengths, n)
  worst = 0.0
  for t in range(steps):
    tokens = rng.integers(0, 50, (num_prompts * n, 1))  # every sample feeds its own token.
    pos = (row_lengths + t)[:, None]
    got, group = _apply(model, tokens, pos, group)
    expected, repeated = _apply(model, tokens, pos, repeated)
    worst = max(worst, float(np.abs(got - expected).max() / np.abs(expected).max()))
  assert worst < 1e-5, worst  # the bound: relative to the largest logit.


_apply_at = jax.jit(lambda model, tokens, at: model.apply(tokens, logits_at=at))


def test_logits_at_and_cache_checks():
  model = helpers.random_model(5)
  tokens = jnp.asarray(np.random.default_rng(2).integers(0, 50, (2, 6)))
  full = models.forward_logits(model, tokens)
  at = np.array([2, 5])
  logits, cache = _apply_at(model, tokens, jnp.asarray(at))
  assert logits.shape == (2, 1, 50) and cache is None
  np.testing.assert_allclose(logits[:, 0], full[np.arange(2), at], atol=1e-5)
  # Shape checks raise while tracing: eval_shape needs no compilation.
  with pytest.raises(ValueError, match="6 tokens do not fit a KV cache of max_len=4"):
    jax.eval_shape(model.apply, tokens, None, models.init_cache(model.config, 2, 4))
  with pytest.raises(ValueError, match="cache.k has shape"):
    jax.eval_shape(model.apply, tokens, None, models.init_cache(model.config, 3, 8))
  with pytest.raises(ValueError, match=r"positions must have the shape of tokens \(2, 6\)"):
    jax.eval_shape(model.apply, tokens, jnp.zeros((2, 5), jnp.int32))
  with pytest.raises(ValueError, match="max_len=40 slots exceeds the model's max_seq_len=32"):
    models.init_cache(model.config, 1, 40)


def test_model_is_a_pytree_with_static_config():
  model = helpers.random_model(0)
  leaves, treedef = jax.tree.flatten(model)
  assert len(leaves) == len(jax.tree.leaves(model.params))
  assert jax.tree.unflatten(treedef, leaves).config == model.config


def test_bfloat16_compute_is_close_to_float32():
  model = helpers.random_model(6)
  low = models.Model(config=dataclasses.replace(model.config, dtype="bfloat16"), params=model.params)
  tokens = np.random.default_rng(3).integers(0, 50, (2, 8))
  a = np.asarray(models.forward_logits(model, tokens))
  b = np.asarray(models.forward_logits(low, tokens))
  assert b.dtype == np.float32
  assert np.abs(a - b).max() < 0.15 * np.abs(a).max()
  assert (a.argmax(-1) == b.argmax(-1)).mean() > 0.8


def test_rope_scaling_config():
  scaling = {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4,
             "original_max_position_embeddings": 16}
  config = helpers.tiny_config(rope_scaling=scaling)
  assert config.rope_scaling == tuple(sorted({**scaling, "factor": 8.0, "low_freq_factor": 1.0,
                                              "high_freq_factor": 4.0, "original_max_position_embeddings": 16.0}.items()))
  hash(config)  # still a static jit argument
  # A JSON round trip (lists of pairs, as a checkpoint stores it) gives the same config.
  as_json = json.loads(json.dumps(dataclasses.asdict(config)))
  assert models.LlamaConfig(**as_json) == config
  plain = models.llama.rope_inv_freq(helpers.tiny_config())
  # llama3 bands: wavelengths (>= 2 pi here) above original / low_freq_factor are
  # slowed by the factor, those below original / high_freq_factor kept (the
  # ramp between is checked against transformers in test_loading_hf.py).
  llama3 = lambda original: models.llama.rope_inv_freq(helpers.tiny_config(  # noqa: E731
      rope_scaling={**scaling, "original_max_position_embeddings": original}))
  np.testing.assert_allclose(llama3(2), plain / 8, rtol=1e-6)
  np.testing.assert_allclose(llama3(10**7), plain, rtol=1e-6)
  linear = models.llama.rope_inv_freq(helpers.tiny_config(rope_scaling={"rope_type": "linear", "factor": 2.0}))
  np.testing.assert_allclose(linear, plain / 2, rtol=1e-6)


@pytest.mark.parametrize(
    "scaling,match",
    [
        ({"rope_type": "yarn", "factor": 2.0}, "rope_type must be one of"),
        ({"rope_type": "linear"}, r"needs exactly the fields \('factor',\)"),
        ({"rope_type": "linear", "factor": -1.0}, "factor must be a finite float > 0"),
        ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0,
          "original_max_position_embeddings": 16}, "high_freq_factor > low_freq_factor"),
        ("llama3", "must be None, a dict or"),
    ],
)
def test_rope_scaling_errors(scaling, match):
  with pytest.raises(ValueError, match=match):
    helpers.tiny_config(rope_scaling=scaling)


def test_config_accepts_numpy_and_jax_scalars_and_stays_hashable():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  plain = models.LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                             num_kv_heads=2, rope_theta=500.0)
  mixed = models.LlamaConfig(vocab_size=np.int64(50), hidden_size=jnp.int32(32), intermediate_size=np.int32(64),
                             num_layers=np.uint8(2), num_heads=4, num_kv_heads=np.int64(2),
                             rope_theta=np.float32(500.0))
  assert mixed == plain and hash(mixed) == hash(plain)
  assert type(mixed.vocab_size) is int and type(mixed.rope_theta) is float
  with pytest.raises(ValueError, match="LlamaConfig.num_layers must be an int in \\[1, 4096\\], got the string"):
    models.LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_layers="2", num_heads=4,
                       num_kv_heads=2)


def test_soft_caps_bound_scores_and_logits():
  # Gemma 2-style caps: logits within (-cap, cap); a tiny attention cap
  # flattens the scores, so every visible key weighs the same.
  model = helpers.random_model(2)
  tokens = np.random.default_rng(0).integers(0, 50, (2, 6))
  capped = model.replace(config=dataclasses.replace(model.config, final_logit_softcap=0.5))
  logits = np.asarray(models.forward_logits(capped, tokens))
  assert np.abs(logits).max() <= 0.5  # tanh rounds to 1 in float32 for large logits.
  np.testing.assert_allclose(logits, 0.5 * np.tanh(np.asarray(models.forward_logits(model, tokens)) / 0.5), rtol=1e-5, atol=1e-6)
  flat = model.replace(config=dataclasses.replace(model.config, attn_logit_softcap=1e-6))
  flat_logits = np.asarray(models.forward_logits(flat, tokens))
  assert np.abs(flat_logits - np.asarray(models.forward_logits(model, tokens))).max() > 1e-2


def test_sliding_window_masks_keys_beyond_the_window():
  # With a window of 1 a token sees only itself: changing an earlier token
  # changes nothing after it in a one-layer model.
  model = helpers.random_model(4, num_layers=1)
  local = model.replace(config=dataclasses.replace(model.config, sliding_window=1))
  a = np.array([[3, 7, 9, 11]])
  b = np.array([[5, 7, 9, 11]])
  np.testing.assert_array_equal(models.forward_logits(local, a)[0, 1:], models.forward_logits(local, b)[0, 1:])
  assert not np.allclose(models.forward_logits(model, a)[0, 1:], models.forward_logits(model, b)[0, 1:])
  with pytest.raises(ValueError, match="layer_types has sliding_attention layers but sliding_window is None"):
    helpers.tiny_config(layer_types=("sliding_attention", "full_attention"))
  with pytest.raises(ValueError, match=r"layer_types must hold num_layers=2 entries"):
    helpers.tiny_config(sliding_window=4, layer_types=("sliding_attention",))
