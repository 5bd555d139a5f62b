"""Hugging Face checkpoint directories (Llama, Mistral, Qwen2, Qwen3, Gemma 3) -> qmotto models.

A directory as `save_pretrained(..., safe_serialization=True)` writes it:
`config.json`, `model.safetensors` or shards listed in
`model.safetensors.index.json`, and optionally `tokenizer.json`,
`tokenizer_config.json`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from typing import Any, Iterator, Mapping

import numpy as np

from qmotto.models import llama
from qmotto.models import partitioning
from qmotto.models.loading import _common
from qmotto.models.loading.tokenizer import Tokenizer

SUPPORTED_ARCHITECTURES = (
    "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Gemma3ForCausalLM",
)
_MODEL_TYPES = {
    "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM", "gemma3_text": "Gemma3ForCausalLM",
}
_DEFAULT_ROPE_TYPES = (None, "default")
ROPE_SCALING_FIELDS = llama.ROPE_SCALING_FIELDS
# The activations each family's MLP may name, as Hugging Face spells them.
_ACTIVATIONS = {"silu": "silu", "gelu_pytorch_tanh": "gelu_tanh"}


def read_json(path: str, what: str) -> Any:
  """A JSON file's contents; ValueError naming the file if it is unreadable or malformed."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: malformed {what} (not valid JSON: {e}).") from e
  except OSError as e:
    raise ValueError(f"{path}: cannot read {what}: {e}") from e


def _rope(scalings: list[tuple[str, Any]], default_theta: float, source: str) -> tuple[float, dict | None]:
  """(rope_theta, rope_scaling) from (field name, dict) pairs, the last non-default scaling winning."""
  theta, rope_scaling = default_theta, None
  for scaling_field, scaling in scalings:
    if scaling is None:
      continue
    if not isinstance(scaling, Mapping):
      raise ValueError(f"{source}: field {scaling_field!r} must be an object or null, got {scaling!r}.")
    if "rope_theta" in scaling:
      theta = scaling["rope_theta"]
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
  if isinstance(theta, bool) or not isinstance(theta, (int, float)):
    raise ValueError(f"{source}: field 'rope_theta' must be a number, got {theta!r}.")
  return float(theta), rope_scaling


def hf_config_kwargs(
    hf_config: Mapping[str, Any],
    source: str = "config.json",
    *,
    max_seq_len: int | None = None,
    dtype: str = "float32",
    param_dtype: str = "float32",
) -> dict:
  """LlamaConfig keyword arguments from a Hugging Face `config.json` dict.

  Supports Llama, Mistral, Qwen2, Qwen3 and Gemma 3 text models
  (`SUPPORTED_ARCHITECTURES`), sliding windows included.

  Raises:
    ValueError naming the field: an unsupported architecture, a missing or
    ill-typed field, or a feature the model does not implement (rope scaling
    other than linear and llama3, biases other than Qwen2's q/k/v, MLP
    activations other than the family's own).
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
  gemma = arch == "Gemma3ForCausalLM"

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
  num_layers = field("num_hidden_layers", int, required=True)
  head_dim = field("head_dim", int)
  if head_dim is None:
    if heads < 1:
      raise ValueError(f"{source}: field 'num_attention_heads' must be an int >= 1, got {heads}.")
    if hidden % heads:
      raise ValueError(f"{source}: hidden_size={hidden} is not a multiple of num_attention_heads={heads}.")
    head_dim = hidden // heads

  # Rope: transformers < 5 writes rope_theta / rope_scaling; >= 5 writes
  # rope_parameters, which Gemma 3 keys by layer type.
  rope_parameters = hf_config.get("rope_parameters")
  if rope_parameters is not None and not isinstance(rope_parameters, Mapping):
    raise ValueError(f"{source}: field 'rope_parameters' must be an object, got {rope_parameters!r}.")
  rope_parameters = dict(rope_parameters or {})
  local_rope_theta = None
  if gemma:
    global_rope = rope_parameters.get("full_attention", rope_parameters if "rope_type" in rope_parameters else None)
    rope_theta, rope_scaling = _rope(
        [("rope_scaling", hf_config.get("rope_scaling")), ("rope_parameters.full_attention", global_rope)],
        float(hf_config.get("rope_theta") or 1_000_000.0), source,
    )
    local = rope_parameters.get("sliding_attention") or {}
    local_rope_theta, local_scaling = _rope(
        [("rope_parameters.sliding_attention", local)],
        float(hf_config.get("rope_local_base_freq") or 10_000.0), source,
    )
    if local_scaling is not None:
      raise ValueError(f"{source}: rope scaling on the sliding-window layers is not supported.")
  else:
    rope_theta, rope_scaling = _rope(
        [("rope_scaling", hf_config.get("rope_scaling")), ("rope_parameters", rope_parameters)],
        float(hf_config.get("rope_theta") or 10000.0), source,
    )
  partial = hf_config.get("partial_rotary_factor", rope_parameters.get("partial_rotary_factor", 1.0))
  if partial not in (None, 1, 1.0):
    raise ValueError(f"{source}: partial_rotary_factor={partial!r} is not supported (only 1.0).")

  act_field = "hidden_activation" if gemma else "hidden_act"
  act = hf_config.get(act_field) or hf_config.get("hidden_act") or ("gelu_pytorch_tanh" if gemma else "silu")
  expected_act = "gelu_pytorch_tanh" if gemma else "silu"
  if act != expected_act:
    raise ValueError(f"{source}: {act_field}={act!r} is not supported for {arch} (only {expected_act!r}).")
  if hf_config.get("mlp_bias"):
    raise ValueError(f"{source}: mlp_bias=true is not supported.")
  qkv_bias = arch == "Qwen2ForCausalLM"  # Qwen2: q/k/v biases, no o bias.
  if not qkv_bias and hf_config.get("attention_bias"):
    raise ValueError(f"{source}: attention_bias=true is not supported for {arch} (it adds an o_proj bias).")

  # Sliding windows. Qwen2/3 use them only with use_sliding_window; Mistral
  # slides every layer when sliding_window is set; Gemma 3 lists layer_types.
  sliding_window = field("sliding_window", int)
  if arch in ("Qwen2ForCausalLM", "Qwen3ForCausalLM") and not hf_config.get("use_sliding_window"):
    sliding_window = None
  if arch == "LlamaForCausalLM":
    sliding_window = None
  layer_types = hf_config.get("layer_types")
  if layer_types is not None:
    if not isinstance(layer_types, list) or any(t not in llama.LAYER_TYPES for t in layer_types):
      raise ValueError(f"{source}: field 'layer_types' must list {llama.LAYER_TYPES}, got {layer_types!r}.")
    if sliding_window is None:
      if "sliding_attention" in layer_types and arch not in ("Qwen2ForCausalLM", "Qwen3ForCausalLM"):
        raise ValueError(f"{source}: layer_types has sliding_attention layers but sliding_window is null.")
      layer_types = None  # Qwen's layer_types name windows only with use_sliding_window.
    else:
      layer_types = tuple(layer_types)
  elif gemma and sliding_window is not None:
    pattern = field("sliding_window_pattern", int, default=6)
    layer_types = tuple(
        "sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(num_layers)
    )
  elif arch == "Qwen2ForCausalLM" or arch == "Qwen3ForCausalLM":
    if sliding_window is not None:
      first = field("max_window_layers", int, default=num_layers)
      layer_types = tuple("sliding_attention" if i >= first else "full_attention" for i in range(num_layers))

  if max_seq_len is None:
    max_seq_len = field("max_position_embeddings", int, default=2048)
  rms_norm_eps = field("rms_norm_eps", float, default=1e-6)
  tie = hf_config.get("tie_word_embeddings", gemma)
  if not isinstance(tie, bool):
    raise ValueError(f"{source}: field 'tie_word_embeddings' must be a bool, got {tie!r}.")
  kwargs = dict(
      vocab_size=field("vocab_size", int, required=True),
      hidden_size=hidden,
      intermediate_size=field("intermediate_size", int, required=True),
      num_layers=num_layers,
      num_heads=heads,
      num_kv_heads=kv_heads,
      head_dim=head_dim,
      rope_theta=rope_theta,
      rope_scaling=rope_scaling,
      rms_norm_eps=float(rms_norm_eps),
      tie_embeddings=tie,
      qkv_bias=qkv_bias,
      max_seq_len=max_seq_len,
      dtype=dtype,
      param_dtype=param_dtype,
      qk_norm=arch in ("Qwen3ForCausalLM", "Gemma3ForCausalLM"),
      sliding_window=sliding_window,
      layer_types=layer_types,
  )
  if gemma:
    if hf_config.get("use_bidirectional_attention"):
      raise ValueError(f"{source}: use_bidirectional_attention=true is not supported (causal decoding only).")
    kwargs.update(
        norm_offset=1.0,
        post_norms=True,
        embed_scale=True,
        mlp_activation=_ACTIVATIONS[act],
        query_pre_attn_scalar=field("query_pre_attn_scalar", float, default=float(head_dim)),
        local_rope_theta=local_rope_theta,
        # transformers' Gemma3Attention never passes attn_logit_softcapping
        # to its attention (Gemma 2's does), and Gemma 3's checkpoints set it
        # to null: the scores are not capped, as there.
        attn_logit_softcap=None,
        final_logit_softcap=field("final_logit_softcapping", float),
    )
  return kwargs


def _safetensors_files(path: str) -> list[str]:
  index_file = os.path.join(path, "model.safetensors.index.json")
  if os.path.isfile(index_file):
    index = read_json(index_file, "safetensors index")
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


@contextlib.contextmanager
def open_safetensors(files: list[str]) -> Iterator[tuple[dict[str, Any], dict[str, tuple[int, ...]]]]:
  """Opens safetensors files lazily: (name -> slice, name -> shape), while the context lasts.

  A slice reads only the block it is indexed with (`tensor[0:128, :]`), in
  the stored dtype (bfloat16 comes as `ml_dtypes.bfloat16`), so sharded
  loading reads each device's block and nothing else.
  """
  safetensors = _common.require("safetensors", "safetensors", "Reading *.safetensors")
  import ml_dtypes  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import  (NumPy learns "bfloat16")

  slices: dict[str, Any] = {}
  shapes: dict[str, tuple[int, ...]] = {}
  origin: dict[str, str] = {}
  with contextlib.ExitStack() as stack:
    for file in files:
      try:
        handle = stack.enter_context(safetensors.safe_open(file, framework="numpy"))
        for name in handle.keys():
          if name in slices:
            raise ValueError(f"{file}: tensor {name!r} is also in {origin[name]}.")
          slices[name] = _CheckedSlice(handle.get_slice(name), file)
          shapes[name] = tuple(int(n) for n in slices[name].shape)
          origin[name] = file
      except ValueError:
        raise
      except Exception as e:  # SafetensorError, OSError, unknown dtypes.
        raise ValueError(f"{file}: cannot read safetensors file: {e}") from e
    yield slices, shapes


class _CheckedSlice:
  """A safetensors slice whose read errors name the file."""

  def __init__(self, handle, file: str):
    self._handle, self._file = handle, file
    self.shape = tuple(handle.get_shape())

  def __getitem__(self, index):
    try:
      return self._handle[index]
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f"{self._file}: cannot read safetensors file: {e}") from e


def load_hf_directory(
    path: str | os.PathLike,
    *,
    max_seq_len: int | None = None,
    dtype: str = "float32",
    param_dtype: str = "float32",
    mesh=None,
):
  """Loads a Hugging Face directory (an architecture of `SUPPORTED_ARCHITECTURES`).

  Args:
    path: the directory (config.json, *.safetensors, optional tokenizer.json).
    max_seq_len: the model's position limit (default: max_position_embeddings).
    dtype: the compute dtype of the config.
    param_dtype: the dtype the weights are stored in on the devices; a
      checkpoint stored in that dtype is read without conversion.
    mesh: optional ("data", "model") mesh (`qmotto.sharding.make_mesh`):
      each device reads and holds only its block of every weight.

  Returns:
    (qmotto.models.Model, Tokenizer or None).
  """
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise ValueError(f"{path}: not a directory (expected a Hugging Face model directory).")
  config_file = os.path.join(path, "config.json")
  if not os.path.isfile(config_file):
    raise ValueError(f"{path}: config.json is missing (not a Hugging Face model directory).")
  hf_config = read_json(config_file, "config.json")
  kwargs = hf_config_kwargs(hf_config, config_file, max_seq_len=max_seq_len, dtype=dtype, param_dtype=param_dtype)
  config = _common.make_config(kwargs, config_file)
  shardings = None if mesh is None else partitioning.param_shardings(config, mesh)
  files = _safetensors_files(path)
  tokenizer = Tokenizer.from_hf_directory(path, hf_config)
  with open_safetensors(files) as (slices, shapes):
    params = _common.load_params(config, slices, path, shapes=shapes, shardings=shardings)
  return llama.Model(config=config, params=params, mesh=mesh), tokenizer
