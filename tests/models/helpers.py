"""Tiny Llama configs and NumPy-drawn parameters for the model tests.

Parameters are drawn with NumPy from `param_shapes`, which is faster than
compiling Flax's initializers and gives O(1) logits and peaked attention.
"""

import jax
import numpy as np

from qmotto import models


def tiny_config(**overrides) -> models.LlamaConfig:
  fields = dict(
      vocab_size=50,
      hidden_size=32,
      intermediate_size=64,
      num_layers=2,
      num_heads=4,
      num_kv_heads=2,
      max_seq_len=32,
  )
  fields.update(overrides)
  return models.LlamaConfig(**fields)


def random_params(config: models.LlamaConfig, seed: int, scale: float = 1.5) -> dict:
  rng = np.random.default_rng(seed)

  def draw(path, shape):
    name = path[-1].key
    if name == "scale":
      return (1.0 + 0.2 * rng.normal(size=shape)).astype(np.float32)
    if name == "bias":
      return (0.5 * rng.normal(size=shape)).astype(np.float32)
    if name == "embedding":
      return rng.normal(size=shape).astype(np.float32)
    return (scale * rng.normal(size=shape) / np.sqrt(shape[0])).astype(np.float32)

  shapes = models.param_shapes(config)
  return jax.tree_util.tree_map_with_path(draw, shapes, is_leaf=lambda x: isinstance(x, tuple))


def random_model(seed: int = 0, **overrides) -> models.Model:
  config = tiny_config(**overrides)
  return models.Model(config=config, params=random_params(config, seed))


def random_hf_tensors(*, vocab, hidden, ffn, layers, heads, kv_heads, qkv_bias=False, tie=False, seed=0):
  """float32 tensors of a random Hugging Face Llama/Qwen2 checkpoint, by HF name."""
  rng = np.random.default_rng(seed)
  r = lambda *shape: rng.normal(0, 0.2, shape).astype(np.float32)  # noqa: E731
  dh = hidden // heads
  t = {"model.embed_tokens.weight": r(vocab, hidden), "model.norm.weight": r(hidden)}
  for i in range(layers):
    p = f"model.layers.{i}."
    t[p + "input_layernorm.weight"] = r(hidden)
    t[p + "post_attention_layernorm.weight"] = r(hidden)
    t[p + "self_attn.q_proj.weight"] = r(heads * dh, hidden)
    t[p + "self_attn.k_proj.weight"] = r(kv_heads * dh, hidden)
    t[p + "self_attn.v_proj.weight"] = r(kv_heads * dh, hidden)
    t[p + "self_attn.o_proj.weight"] = r(hidden, heads * dh)
    t[p + "mlp.gate_proj.weight"] = r(ffn, hidden)
    t[p + "mlp.up_proj.weight"] = r(ffn, hidden)
    t[p + "mlp.down_proj.weight"] = r(hidden, ffn)
    if qkv_bias:
      t[p + "self_attn.q_proj.bias"] = r(heads * dh)
      t[p + "self_attn.k_proj.bias"] = r(kv_heads * dh)
      t[p + "self_attn.v_proj.bias"] = r(kv_heads * dh)
  if not tie:
    t["lm_head.weight"] = r(vocab, hidden)
  return t
