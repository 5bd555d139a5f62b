"""Hugging Face checkpoint directories (Llama and Qwen2) -> qmotto models.

A directory as `save_pretrained(..., safe_serialization=True)` writes it:
`config.json`, `model.safetensors` or shards listed in
`model.safetensors.index.json`, and optionally `tokenizer.json`,
`tokenizer_config.json`.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any, Mapping

import numpy as np

from qmotto.models import llama
from qmotto.models.loading import _common
from qmotto.models.loading.tokenizer import Tokenizer

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM")
_MODEL_TYPES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}
_DEFAULT_ROPE_TYPES = (None, "default")
ROPE_SCALING_FIELDS = llama.ROPE_SCALING_FIELDS


def _read_json(path: str, what: str) -> Any:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: malformed {what} (not valid JSON: {e}).") from e
  except OSError as e:
    raise ValueError(f"{path}: cannot read {what}: {e}") from e


def hf_config_kwargs(
    hf_config: Mapping[str, Any],
    source: str = "config.json",
    *,
    max_seq_len: int | None = None,
    dtype: str = "float32",
) -> dict:
  """LlamaConfig keyword arguments from a Hugging Face `config.json` dict.

  Raises:
    ValueError naming the field: an unsupported architecture, a missing or
    ill-typed field, or a feature the model does not implement (rope scaling
    other than linear and llama3,
    sliding windows, biases other than Qwen2's q/k/v, activations but SiLU).
  """
  if not isinstance(hf_config, Mapping):
    raise ValueError(f"{source}: expected a JSON object, got {type(hf_config).__name__}.")
  architectures = hf_config.get("architectures")
  if architectures is None and hf_config.get("model_type") in _MODEL_TYPES:
    architectures = [_MODEL_TYPES[hf_config["model_type"]]]
  if not isinstance(architectures, list) or not architectures:
    raise ValueError(
        f"{source}: field 'architectures' is missing or empty; supported: {list(SUPPORTED_ARCHITECTURES)}."
    )
  arch = next((a for a in architectures if a in SUPPORTED_ARCHITECTURES), None)
  if arch is None:
    raise ValueError(
        f"{source}: unsupported architecture {architectures}; supported: {list(SUPPORTED_ARCHITECTURES)}."
    )

  def field(name, kind, default=None, required=False):
    value = hf_config.get(name)
    if value is None:
      value = default
    if value is None:
      if required:
        raise ValueError(f"{source}: required field {name!r} is missing.")
      return None
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
      value, ok = float(value), True
    if not ok:
      raise ValueError(f"{source}: field {name!r} must be {kind.__name__}, got {value!r}.")
    return value

  hidden = field("hidden_size", int, required=True)
  heads = field("num_attention_heads", int, required=True)
  kv_heads = field("num_key_value_heads", int, default=heads)
  head_dim = field("head_dim", int)
  if head_dim is None:
    if heads < 1:
      raise ValueError(f"{source}: field 'num_attention_heads' must be an int >= 1, got {heads}.")
    if hidden % heads:
      raise ValueError(f"{source}: hidden_size={hidden} is not a multiple of num_attention_heads={heads}.")
    head_dim = hidden // heads

  # Rope: transformers < 5 writes rope_theta / rope_scaling; >= 5 writes rope_parameters.
  rope_parameters = hf_config.get("rope_parameters")
  if rope_parameters is not None and not isinstance(rope_parameters, Mapping):
    raise ValueError(f"{source}: field 'rope_parameters' must be an object, got {rope_parameters!r}.")
  rope_parameters = dict(rope_parameters or {})
  rope_theta = hf_config.get("rope_theta", rope_parameters.get("rope_theta", 10000.0))
  if isinstance(rope_theta, bool) or not isinstance(rope_theta, (int, float)):
    raise ValueError(f"{source}: field 'rope_theta' must be a number, got {rope_theta!r}.")
  rope_scaling = None
  for scaling_field, scaling in (("rope_scaling", hf_config.get("rope_scaling")), ("rope_parameters", rope_parameters)):
    if scaling is None:
      continue
    if not isinstance(scaling, Mapping):
      raise ValueError(f"{source}: field {scaling_field!r} must be an object or null, got {scaling!r}.")
    rope_type = scaling.get("rope_type", scaling.get("type"))
    if rope_type in _DEFAULT_ROPE_TYPES:
      continue
    if rope_type not in ROPE_SCALING_FIELDS:
      raise ValueError(
          f"{source}: {scaling_field} type {rope_type!r} is not supported (implemented: plain RoPE, "
          f"{', '.join(repr(t) for t in sorted(ROPE_SCALING_FIELDS))})."
      )
    missing = [name for name in ROPE_SCALING_FIELDS[rope_type] if name not in scaling]
    if missing:
      raise ValueError(f"{source}: {scaling_field} of type {rope_type!r} lacks {', '.join(missing)}.")
    rope_scaling = {"rope_type": rope_type, **{name: scaling[name] for name in ROPE_SCALING_FIELDS[rope_type]}}
  partial = hf_config.get("partial_rotary_factor", rope_parameters.get("partial_rotary_factor", 1.0))
  if partial not in (None, 1, 1.0):
    raise ValueError(f"{source}: partial_rotary_factor={partial!r} is not supported (only 1.0).")

  act = hf_config.get("hidden_act", "silu")
  if act != "silu":
    raise ValueError(f"{source}: hidden_act={act!r} is not supported (only 'silu').")
  if hf_config.get("mlp_bias"):
    raise ValueError(f"{source}: mlp_bias=true is not supported.")
  if arch == "LlamaForCausalLM":
    if hf_config.get("attention_bias"):
      raise ValueError(
          f"{source}: attention_bias=true is not supported for LlamaForCausalLM (it adds an o_proj bias)."
      )
    qkv_bias = False
  else:  # Qwen2: q/k/v biases, no o bias.
    qkv_bias = True
    if hf_config.get("use_sliding_window"):
      raise ValueError(f"{source}: use_sliding_window=true is not supported (full attention only).")
    layer_types = hf_config.get("layer_types")
    if isinstance(layer_types, list) and any(t != "full_attention" for t in layer_types):
      raise ValueError(f"{source}: layer_types other than 'full_attention' are not supported: {layer_types}.")

  if max_seq_len is None:
    max_seq_len = field("max_position_embeddings", int, default=2048)
  rms_norm_eps = field("rms_norm_eps", float, default=1e-6)
  tie = hf_config.get("tie_word_embeddings", False)
  if not isinstance(tie, bool):
    raise ValueError(f"{source}: field 'tie_word_embeddings' must be a bool, got {tie!r}.")
  return dict(
      vocab_size=field("vocab_size", int, required=True),
      hidden_size=hidden,
      intermediate_size=field("intermediate_size", int, required=True),
      num_layers=field("num_hidden_layers", int, required=True),
      num_heads=heads,
      num_kv_heads=kv_heads,
      head_dim=head_dim,
      rope_theta=float(rope_theta),
      rope_scaling=rope_scaling,
      rms_norm_eps=float(rms_norm_eps),
      tie_embeddings=tie,
      qkv_bias=qkv_bias,
      max_seq_len=max_seq_len,
      dtype=dtype,
  )


def _safetensors_files(path: str) -> list[str]:
  index_file = os.path.join(path, "model.safetensors.index.json")
  if os.path.isfile(index_file):
    index = _read_json(index_file, "safetensors index")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
      raise ValueError(f"{index_file}: field 'weight_map' is missing or empty.")
    bad = [v for v in weight_map.values() if not isinstance(v, str)]
    if bad:
      raise ValueError(f"{index_file}: 'weight_map' values must be shard file names, got {bad[0]!r}.")
    files = sorted(set(weight_map.values()))
    for name in files:
      # A shard must be a file of this directory: an index naming "../x" or an
      # absolute path would read weights from elsewhere on the machine. The
      # check is on the name, not the resolved path: Hugging Face's cache
      # links each shard of a snapshot to a blob outside the snapshot folder.
      normal = os.path.normpath(name)
      if os.path.isabs(name) or normal == ".." or normal.startswith(".." + os.sep) or not name:
        tensor = next(t for t, v in weight_map.items() if v == name)
        raise ValueError(
            f"{index_file}: weight_map entry {tensor!r} -> {name!r} points outside the model "
            f"directory {path}; shards must be plain file names inside it."
        )
      if not os.path.isfile(os.path.join(path, name)):
        raise ValueError(f"{index_file}: shard {name!r} is listed but missing from {path}.")
    return [os.path.join(path, name) for name in files]
  files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
  if not files:
    others = [n for n in os.listdir(path) if n.endswith((".bin", ".pt", ".pth", ".gguf"))]
    hint = f" (found {others}; only safetensors is supported)" if others else ""
    raise ValueError(f"{path}: no *.safetensors weight files{hint}.")
  return files


def read_safetensors(files: list[str]) -> dict[str, np.ndarray]:
  """All tensors of the given safetensors files, by name, as numpy arrays (native dtype)."""
  safetensors = _common.require("safetensors", "safetensors", "Reading *.safetensors")
  tensors: dict[str, np.ndarray] = {}
  origin: dict[str, str] = {}
  for file in files:
    try:
      with safetensors.safe_open(file, framework="numpy") as f:
        for name in f.keys():
          if name in tensors:
            raise ValueError(f"{file}: tensor {name!r} is also in {origin[name]}.")
          tensors[name] = f.get_tensor(name)
          origin[name] = file
    except ValueError:
      raise
    except Exception as e:  # SafetensorError, OSError, unknown dtypes.
      raise ValueError(f"{file}: cannot read safetensors file: {e}") from e
  return tensors


def load_hf_raw(
    path: str | os.PathLike, *, max_seq_len: int | None = None, dtype: str = "float32"
) -> tuple[dict, dict, Tokenizer | None]:
  """(config_kwargs, float32 numpy params, tokenizer or None) from a HF directory."""
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise ValueError(f"{path}: not a directory (expected a Hugging Face model directory).")
  config_file = os.path.join(path, "config.json")
  if not os.path.isfile(config_file):
    raise ValueError(f"{path}: config.json is missing (not a Hugging Face model directory).")
  hf_config = _read_json(config_file, "config.json")
  kwargs = hf_config_kwargs(hf_config, config_file, max_seq_len=max_seq_len, dtype=dtype)
  config = _common.make_config(kwargs, config_file)
  tensors = read_safetensors(_safetensors_files(path))
  params = _common.hf_tensors_to_params(config, tensors, path)
  tokenizer = Tokenizer.from_hf_directory(path, hf_config)
  return kwargs, params, tokenizer


def load_hf_directory(path: str | os.PathLike, *, max_seq_len: int | None = None, dtype: str = "float32"):
  """Loads a Hugging Face Llama / Qwen2 directory.

  Args:
    path: the directory (config.json, *.safetensors, optional tokenizer.json).
    max_seq_len: the model's position limit (default: max_position_embeddings).
    dtype: the compute dtype of the config; parameters are float32 regardless.

  Returns:
    (LlamaConfig, params as nested dicts of float32 jax arrays, Tokenizer or None).
  """
  kwargs, params, tokenizer = load_hf_raw(path, max_seq_len=max_seq_len, dtype=dtype)
  model = _common.to_model(_common.make_config(kwargs, os.fspath(path)), params)
  return model.config, model.params, tokenizer
