"""Shared pieces of the checkpoint loaders: the Hugging Face tensor-name map,
shape checks with messages that name the tensor, and the placement of the weights.

Every loader first produces a flat dict from Hugging Face tensor names
("model.layers.0.self_attn.q_proj.weight", ...) to arrays (or lazy slices)
in Hugging Face's layout ([out, in] for Linear weights), then `load_params`
checks them and places the parameter tree of `qmotto.models.llama`: layers
stacked, in the parameter dtype, sharded if asked.
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
  layer: int | None = None  # the index on the stacked layer axis, None outside the layers


def tensor_specs(config: LlamaConfig) -> list[_TensorSpec]:
  """Every tensor the model needs, by Hugging Face name, in file order."""
  d, f, v, dh = config.hidden_size, config.intermediate_size, config.vocab_size, config.head_dim
  hq = config.num_heads * dh
  hkv = config.num_kv_heads * dh
  specs = [_TensorSpec("model.embed_tokens.weight", ("embed", "embedding"), (v, d), False)]
  # Gemma's norms around the MLP are named for where they sit, Llama's for
  # what they follow: "post_attention_layernorm" is Llama's pre-MLP norm but
  # Gemma's norm on the attention output.
  if config.post_norms:
    norms = [("input_layernorm", "attn_norm"), ("post_attention_layernorm", "attn_post_norm"),
             ("pre_feedforward_layernorm", "mlp_norm"), ("post_feedforward_layernorm", "mlp_post_norm")]
  else:
    norms = [("input_layernorm", "attn_norm"), ("post_attention_layernorm", "mlp_norm")]
  for i in range(config.num_layers):
    pre = f"model.layers.{i}."

    def spec(name, path, shape, transpose, i=i, pre=pre):
      return _TensorSpec(pre + name, ("layers", *path), shape, transpose, i)

    specs += [spec(hf + ".weight", (ours, "scale"), (d,), False) for hf, ours in norms]
    specs += [
        spec("self_attn.q_proj.weight", ("attn", "q", "kernel"), (hq, d), True),
        spec("self_attn.k_proj.weight", ("attn", "k", "kernel"), (hkv, d), True),
        spec("self_attn.v_proj.weight", ("attn", "v", "kernel"), (hkv, d), True),
    ]
    if config.qkv_bias:
      specs += [
          spec("self_attn.q_proj.bias", ("attn", "q", "bias"), (hq,), False),
          spec("self_attn.k_proj.bias", ("attn", "k", "bias"), (hkv,), False),
          spec("self_attn.v_proj.bias", ("attn", "v", "bias"), (hkv,), False),
      ]
    if config.qk_norm:
      specs += [
          spec("self_attn.q_norm.weight", ("attn", "q_norm", "scale"), (dh,), False),
          spec("self_attn.k_norm.weight", ("attn", "k_norm", "scale"), (dh,), False),
      ]
    specs += [
        spec("self_attn.o_proj.weight", ("attn", "o", "kernel"), (d, hq), True),
        spec("mlp.gate_proj.weight", ("mlp", "gate", "kernel"), (f, d), True),
        spec("mlp.up_proj.weight", ("mlp", "up", "kernel"), (f, d), True),
        spec("mlp.down_proj.weight", ("mlp", "down", "kernel"), (d, f), True),
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


def as_param_dtype(array: Any, dtype, name: str, source: str) -> np.ndarray:
  """A floating-point tensor (or slice) in the parameter dtype, checked finite before and after.

  A bf16 tensor read as bf16 is not copied; a float32 one stored as float16
  that overflows (|x| > 65504) is refused rather than turned into inf.
  """
  array = np.asarray(array)
  if not (np.issubdtype(array.dtype, np.floating) or array.dtype.name.startswith(("bfloat16", "float8"))):
    raise ValueError(f"{source}: tensor {name!r} has dtype {array.dtype}; expected a floating-point type.")
  check_finite(array, name, source)
  with np.errstate(over="ignore"):  # an overflow is reported below, with the tensor's name.
    out = array.astype(dtype, copy=False)
  if out is not array and not bool(np.all(np.isfinite(out))):
    raise ValueError(
        f"{source}: tensor {name!r} holds values beyond the range of param_dtype={np.dtype(dtype).name} "
        f"(stored as {array.dtype.name}, largest |x| = {float(np.max(np.abs(array.astype(np.float32)))):.4g}); "
        "load it with a wider param_dtype (float32 or bfloat16)."
    )
  return out


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


def load_params(
    config: LlamaConfig,
    tensors: Mapping[str, Any],
    source: str,
    *,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    name_map: Mapping[str, str] | None = None,
    shardings: Any = None,
) -> dict:
  """Checks Hugging Face-named tensors (see `check_tensors`) and places them as the param tree.

  Each parameter is built in `config.param_dtype`, per-layer tensors stacked
  on the leading layer axis, Linear weights transposed to [in, out]. With
  `shardings`, every device's block is read from the tensors and placed
  directly (`jax.make_array_from_callback`): a lazy source (safetensors
  slices) is read block by block, and no parameter is ever whole on one
  device or twice in host memory.

  Args:
    config: the architecture the tensors must match.
    tensors: Hugging Face name -> an array or anything sliceable like one
      (a safetensors slice), in Hugging Face's layout.
    source: the file or directory, named in error messages.
    shapes: name -> shape, when `tensors` are not arrays (default: their shapes).
    name_map: optional Hugging Face name -> the file's name, for messages.
    shardings: None (each parameter on the default device), or a tree of
      `jax.sharding.Sharding`s shaped like the param tree.

  Returns:
    The nested parameter dict of jax arrays.
  """
  import jax  # pylint: disable=g-import-not-at-top

  if shapes is None:
    shapes = {n: np.shape(a) for n, a in tensors.items()}
  check_tensors(config, shapes, source, name_map=name_map)
  shown = lambda n: (name_map or {}).get(n, n)  # noqa: E731
  dtype = config.weight_dtype
  by_path: dict[tuple[str, ...], list[_TensorSpec]] = {}
  for spec in tensor_specs(config):
    by_path.setdefault(spec.path, []).append(spec)

  def read(spec: _TensorSpec, index: tuple) -> np.ndarray:
    """The block `index` (in the parameter's [in, out] layout) of one tensor."""
    hf_index = tuple(reversed(index)) if spec.transpose else tuple(index)
    block = as_param_dtype(tensors[spec.hf_name][hf_index], dtype, shown(spec.hf_name), source)
    return np.ascontiguousarray(block.T) if spec.transpose else block

  params: dict = {}
  for path, specs in by_path.items():
    first = specs[0]
    shape = tuple(reversed(first.hf_shape)) if first.transpose else first.hf_shape
    stacked = first.layer is not None
    if stacked:
      shape = (len(specs), *shape)

    def block(index, specs=specs, stacked=stacked, shape=shape):
      index = tuple(index) if index is not None else tuple(slice(None) for _ in shape)
      index += (slice(None),) * (len(shape) - len(index))
      if not stacked:
        return read(specs[0], index)
      layers = range(*index[0].indices(len(specs)))
      return np.stack([read(specs[i], index[1:]) for i in layers])

    if shardings is None:
      value = jax.numpy.asarray(block(None))
    else:
      sharding = shardings
      for key in path:
        sharding = sharding[key]
      value = jax.make_array_from_callback(shape, sharding, block)
    node = params
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = value
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


def require(module: str, pip_name: str, what: str):
  """Imports an optional dependency or raises an ImportError that says how to get it."""
  import importlib  # pylint: disable=g-import-not-at-top

  try:
    return importlib.import_module(module)
  except ImportError as e:
    raise ImportError(f"{what} needs the {pip_name!r} package: pip install {pip_name}") from e
