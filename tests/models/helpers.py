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
