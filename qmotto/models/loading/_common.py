"""Shared pieces of the checkpoint loaders: the Hugging Face tensor-name map,
shape checks with messages that name the tensor, and the float32 conversion.

Every loader first produces a flat dict from Hugging Face tensor names
("model.layers.0.self_attn.q_proj.weight", ...) to numpy arrays in Hugging
Face's layout ([out, in] for Linear weights), then `hf_tensors_to_params`
checks and turns it into the parameter tree of `qmotto.models.llama`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

import numpy as np

from qmotto.models.llama import LlamaConfig

# Tensors that carry no parameters of the model and are dropped silently.
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


@dataclasses.dataclass(frozen=True)
class _TensorSpec:
  hf_name: str
  path: tuple[str, ...]  # path in the parameter tree
  hf_shape: tuple[int, ...]  # expected shape in Hugging Face's layout
  transpose: bool  # Linear weight [out, in] -> kernel [in, out]


def tensor_specs(config: LlamaConfig) -> list[_TensorSpec]:
  """Every tensor the model needs, by Hugging Face name, in file order."""
  d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
  hq = config.num_heads * config.head_dim
  hkv = config.num_kv_heads * config.head_dim
  specs = [_TensorSpec("model.embed_tokens.weight", ("embed", "embedding"), (v, d), False)]
  for i in range(config.num_layers):
    pre = f"model.layers.{i}."
    layer = f"layers_{i}"
    specs += [
        _TensorSpec(pre + "input_layernorm.weight", (layer, "attn_norm", "scale"), (d,), False),
        _TensorSpec(pre + "self_attn.q_proj.weight", (layer, "attn", "q", "kernel"), (hq, d), True),
        _TensorSpec(pre + "self_attn.k_proj.weight", (layer, "attn", "k", "kernel"), (hkv, d), True),
        _TensorSpec(pre + "self_attn.v_proj.weight", (layer, "attn", "v", "kernel"), (hkv, d), True),
    ]
    if config.qkv_bias:
      specs += [
          _TensorSpec(pre + "self_attn.q_proj.bias", (layer, "attn", "q", "bias"), (hq,), False),
          _TensorSpec(pre + "self_attn.k_proj.bias", (layer, "attn", "k", "bias"), (hkv,), False),
          _TensorSpec(pre + "self_attn.v_proj.bias", (layer, "attn", "v", "bias"), (hkv,), False),
      ]
    specs += [
        _TensorSpec(pre + "self_attn.o_proj.weight", (layer, "attn", "o", "kernel"), (d, hq), True),
        _TensorSpec(pre + "post_attention_layernorm.weight", (layer, "mlp_norm", "scale"), (d,), False),
        _TensorSpec(pre + "mlp.gate_proj.weight", (layer, "mlp", "gate", "kernel"), (f, d), True),
        _TensorSpec(pre + "mlp.up_proj.weight", (layer, "mlp", "up", "kernel"), (f, d), True),
        _TensorSpec(pre + "mlp.down_proj.weight", (layer, "mlp", "down", "kernel"), (d, f), True),
    ]
  specs.append(_TensorSpec("model.norm.weight", ("final_norm", "scale"), (d,), False))
  if not config.tie_embeddings:
    specs.append(_TensorSpec("lm_head.weight", ("lm_head", "kernel"), (v, d), True))
  return specs


def _summarize(names: Iterable[str], limit: int = 8) -> str:
  names = sorted(names)
  shown = ", ".join(names[:limit])
  if len(names) > limit:
    shown += f", ... ({len(names) - limit} more)"
  return shown


def as_float32(array: Any, name: str, source: str) -> np.ndarray:
  """A float32 numpy copy of a floating-point tensor (bf16/fp16/f64 upcast)."""
  array = np.asarray(array)
  if not (np.issubdtype(array.dtype, np.floating) or array.dtype.name.startswith(("bfloat16", "float8"))):
    raise ValueError(f"{source}: tensor {name!r} has dtype {array.dtype}; expected a floating-point type.")
  return np.array(array, dtype=np.float32)


def check_tensors(
    config: LlamaConfig,
    shapes: Mapping[str, tuple[int, ...]],
    source: str,
    *,
    name_map: Mapping[str, str] | None = None,
) -> None:
  """Checks tensor names and shapes (Hugging Face names and layout) against `config`.

  Args:
    config: the architecture the tensors must match.
    shapes: Hugging Face tensor name -> shape.
    source: the file or directory, named in error messages.
    name_map: optional Hugging Face name -> the name the file uses, for messages
      (the GGUF loader maps back to "blk.0.attn_q.weight" this way).

  Raises:
    ValueError: a required tensor is missing, a shape differs from the config,
      or the file holds tensors this architecture has no place for.
  """
  name_map = name_map or {}
  shown = lambda n: name_map.get(n, n)  # noqa: E731
  specs = tensor_specs(config)
  needed = {s.hf_name for s in specs}
  missing = [shown(s.hf_name) for s in specs if s.hf_name not in shapes]
  if missing:
    raise ValueError(
        f"{source}: missing tensors for this config ({config.num_layers} layers, "
        f"tie_embeddings={config.tie_embeddings}, qkv_bias={config.qkv_bias}): {_summarize(missing)}."
    )
  unexpected = []
  for name in shapes:
    if name in needed or name.endswith(IGNORED_SUFFIXES):
      continue
    if name == "lm_head.weight" and config.tie_embeddings:
      continue  # Some tied checkpoints store the (identical) head anyway.
    unexpected.append(shown(name))
  if unexpected:
    raise ValueError(
        f"{source}: tensors that this architecture has no parameter for (they would be "
        f"silently ignored): {_summarize(unexpected)}."
    )
  for spec in specs:
    shape = tuple(int(n) for n in shapes[spec.hf_name])
    if shape != spec.hf_shape:
      raise ValueError(
          f"{source}: tensor {shown(spec.hf_name)!r} has shape {list(shape)}, but the config "
          f"expects {list(spec.hf_shape)}."
      )


def hf_tensors_to_params(
    config: LlamaConfig,
    tensors: Mapping[str, Any],
    source: str,
    *,
    name_map: Mapping[str, str] | None = None,
) -> dict:
  """Checks Hugging Face-named tensors (see `check_tensors`) and builds the param tree.

  Args:
    config: the architecture the tensors must match.
    tensors: Hugging Face name -> array (any float dtype) in Hugging Face's layout.
    source: the file or directory, named in error messages.
    name_map: optional Hugging Face name -> the file's name, for messages.

  Returns:
    The nested parameter dict of float32 numpy arrays (kernels transposed to [in, out]).
  """
  check_tensors(config, {n: np.shape(a) for n, a in tensors.items()}, source, name_map=name_map)
  shown = lambda n: (name_map or {}).get(n, n)  # noqa: E731
  params: dict = {}
  for spec in tensor_specs(config):
    value = as_float32(tensors[spec.hf_name], shown(spec.hf_name), source)
    if spec.transpose:
      value = np.ascontiguousarray(value.T)
    check_finite(value, shown(spec.hf_name), source)
    node = params
    for key in spec.path[:-1]:
      node = node.setdefault(key, {})
    node[spec.path[-1]] = value
  return params


def check_finite(value, name: str, source: str) -> None:
  """Raises ValueError unless every entry of a weight tensor is finite (every loader checks this).

  Args:
    value: the tensor, a NumPy array or a JAX array (checked where it lives:
      only one bool crosses to the host, not the weights).
    name: the tensor's name in the file, for the message.
    source: the file or checkpoint, for the message.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  xp = jnp if isinstance(value, jax.Array) else np
  if not bool(xp.all(xp.isfinite(value))):
    raise ValueError(f"{source}: tensor {name!r} holds NaN or infinite values.")


def make_config(config_kwargs: Mapping[str, Any], source: str) -> LlamaConfig:
  """LlamaConfig(**config_kwargs), with its ValueError prefixed by the source."""
  try:
    return LlamaConfig(**config_kwargs)
  except (TypeError, ValueError) as e:
    raise ValueError(f"{source}: unusable model configuration: {e}") from e


def to_model(config: LlamaConfig, params: dict):
  """A qmotto.models.Model holding the params as jax arrays."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from qmotto.models.llama import Model  # pylint: disable=g-import-not-at-top

  params = _map_leaves(jnp.asarray, params)
  return Model(config=config, params=params)


def _map_leaves(fn, tree):
  if isinstance(tree, Mapping):
    return {k: _map_leaves(fn, v) for k, v in tree.items()}
  return fn(tree)


def require(module: str, pip_name: str, what: str):
  """Imports an optional dependency or raises an ImportError that says how to get it."""
  import importlib  # pylint: disable=g-import-not-at-top

  try:
    return importlib.import_module(module)
  except ImportError as e:
    raise ImportError(f"{what} needs the {pip_name!r} package: pip install {pip_name}") from e
