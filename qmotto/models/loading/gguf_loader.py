"""GGUF files (llama.cpp's format; "llama" and "qwen2" architectures) -> qmotto models.

Facts this loader relies on (checked against gguf 0.19 and llama.cpp's
convert_hf_to_gguf.py):

* Tensor shapes in the file are in ggml order (fastest dimension first), the
  reverse of numpy's; `GGUFReader` already exposes `tensor.data` in numpy order
  and `gguf.quants.dequantize` returns numpy order too, which for a Linear
  weight is Hugging Face's [out, in].
* For the "llama" architecture, the converter permutes the rows of the Q and
  K projections (weights and biases) within every head, from Hugging Face's
  rotate-half layout to ggml's interleaved-pair RoPE layout:
      w.reshape(n_head, 2, dim // n_head // 2, *rest).swapaxes(1, 2).reshape(w.shape)
  with n_head = the query heads for Q and the key/value heads for K.
  `unpermute_qk` inverts it. "qwen2" tensors are written unpermuted.
* Tied embeddings: no "output.weight" tensor.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from qmotto.models import llama
from qmotto.models import partitioning
from qmotto.models.loading import _common
from qmotto.models.loading.tokenizer import Tokenizer

SUPPORTED_GGUF_ARCHITECTURES = ("llama", "qwen2")
_PERMUTED_ARCHITECTURES = ("llama",)

_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_BLOCK_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.(.+)$")


def gguf_to_hf_name(name: str) -> str:
  """"blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight" (unknown: unchanged)."""
  if name in _GLOBAL_NAMES:
    return _GLOBAL_NAMES[name]
  m = _BLOCK_RE.match(name)
  if m and m.group(2) in _BLOCK_NAMES:
    return f"model.layers.{m.group(1)}.{_BLOCK_NAMES[m.group(2)]}"
  return name


def hf_to_gguf_name(name: str) -> str:
  """Inverse of `gguf_to_hf_name` (unknown: unchanged)."""
  for gguf_name, hf_name in _GLOBAL_NAMES.items():
    if name == hf_name:
      return gguf_name
  m = re.match(r"^model\.layers\.(\d+)\.(.+)$", name)
  if m:
    for gguf_part, hf_part in _BLOCK_NAMES.items():
      if m.group(2) == hf_part:
        return f"blk.{m.group(1)}.{gguf_part}"
  return name


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """llama.cpp's converter permutation (HF rotate-half rows -> interleaved pairs)."""
  return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """Inverse of `permute_qk`: GGUF Q/K rows (or biases) back to Hugging Face's layout."""
  return w.reshape(n_heads, w.shape[0] // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _gguf():
  return _common.require("gguf", "gguf", "Reading GGUF files")


def open_gguf(path: str | os.PathLike):
  """(gguf.GGUFReader, metadata dict key -> decoded value)."""
  gguf = _gguf()
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f"{path}: GGUF file not found.")
  try:
    reader = gguf.GGUFReader(path)
  except Exception as e:  # Bad magic, truncated file, unknown types.
    raise ValueError(f"{path}: not a readable GGUF file: {e}") from e
  metadata: dict[str, Any] = {}
  for key, field in reader.fields.items():
    if key.startswith("GGUF."):
      continue
    metadata[key] = field.contents()
  return reader, metadata


def gguf_config_kwargs(
    metadata: dict,
    tensor_shapes: dict[str, tuple[int, ...]],
    source: str,
    *,
    max_seq_len: int | None = None,
    dtype: str = "float32",
) -> dict:
  """LlamaConfig keyword arguments from GGUF metadata and the tensors' (numpy-order) shapes."""
  tensor_names = set(tensor_shapes)
  arch = metadata.get("general.architecture")
  if arch not in SUPPORTED_GGUF_ARCHITECTURES:
    raise ValueError(
        f"{source}: general.architecture={arch!r} is not supported; "
        f"supported: {list(SUPPORTED_GGUF_ARCHITECTURES)}."
    )

  def get(key, kind=int, default=None, required=True):
    full = f"{arch}.{key}"
    value = metadata.get(full)
    if value is None:
      if required and default is None:
        raise ValueError(f"{source}: metadata key {full!r} is missing.")
      return default
    try:
      return kind(value)
    except (TypeError, ValueError) as e:
      raise ValueError(f"{source}: metadata key {full!r} has an unusable value {value!r}.") from e

  hidden = get("embedding_length")
  heads = get("attention.head_count")
  kv_heads = get("attention.head_count_kv", default=heads)
  head_dim = get("attention.key_length", required=False)
  if head_dim is None:
    if hidden % heads:
      raise ValueError(f"{source}: {arch}.embedding_length={hidden} is not a multiple of head_count={heads}.")
    head_dim = hidden // heads
  value_dim = get("attention.value_length", required=False)
  if value_dim is not None and value_dim != head_dim:
    raise ValueError(f"{source}: key_length {head_dim} != value_length {value_dim} is not supported.")
  rope_dims = get("rope.dimension_count", required=False)
  if rope_dims is not None and rope_dims != head_dim:
    raise ValueError(
        f"{source}: {arch}.rope.dimension_count={rope_dims} != head_dim={head_dim}: partial rotary "
        "embeddings are not supported."
    )
  scaling = metadata.get(f"{arch}.rope.scaling.type")
  if scaling not in (None, "none"):
    raise ValueError(f"{source}: {arch}.rope.scaling.type={scaling!r} is not supported (plain RoPE only).")
  if "rope_freqs.weight" in tensor_names:
    raise ValueError(
        f"{source}: tensor 'rope_freqs.weight' (Llama-3.1-style rope scaling) is not supported (plain RoPE only)."
    )
  tokens = metadata.get("tokenizer.ggml.tokens")
  vocab = len(tokens) if tokens else get("vocab_size", required=False)
  if vocab is None and len(tensor_shapes.get("token_embd.weight", ())) == 2:
    vocab = tensor_shapes["token_embd.weight"][0]
  if vocab is None:
    raise ValueError(
        f"{source}: cannot tell the vocabulary size (no tokenizer.ggml.tokens, {arch}.vocab_size "
        "or token_embd.weight)."
    )
  if max_seq_len is None:
    max_seq_len = get("context_length", default=2048, required=False)
  return dict(
      vocab_size=vocab,
      hidden_size=hidden,
      intermediate_size=get("feed_forward_length"),
      num_layers=get("block_count"),
      num_heads=heads,
      num_kv_heads=kv_heads,
      head_dim=head_dim,
      rope_theta=get("rope.freq_base", float, default=10000.0, required=False),
      rms_norm_eps=get("attention.layer_norm_rms_epsilon", float),
      tie_embeddings="output.weight" not in tensor_names,
      qkv_bias="blk.0.attn_q.bias" in tensor_names,
      max_seq_len=max_seq_len,
      dtype=dtype,
  )


def dequantize_tensor(tensor, source: str) -> np.ndarray:
  """A GGUF tensor as float32 numpy in numpy (HF) order."""
  gguf = _gguf()
  qtype = tensor.tensor_type
  try:
    out = gguf.quants.dequantize(tensor.data, qtype)
  except NotImplementedError as e:
    traits = getattr(gguf.quants, "_type_traits", {})
    supported = ["F32", "F16"] + sorted(t.name for t in traits)
    raise ValueError(
        f"{source}: tensor {tensor.name!r} has type {qtype.name}, which cannot be dequantized; "
        f"supported types: {supported}."
    ) from e
  expected = tuple(int(n) for n in reversed(tensor.shape.tolist()))
  out = np.asarray(out, dtype=np.float32)
  if out.shape != expected:
    out = out.reshape(expected)
  return out


def load_gguf(
    path: str | os.PathLike,
    *,
    max_seq_len: int | None = None,
    dtype: str = "float32",
    param_dtype: str = "float32",
    mesh=None,
    load_tokenizer: bool = True,
):
  """Loads a GGUF file.

  Args:
    path: the .gguf file.
    max_seq_len: the model's position limit (default: {arch}.context_length).
    dtype: compute dtype of the config.
    param_dtype: the dtype the (dequantized) weights are stored in.
    mesh: optional ("data", "model") mesh: the weights are placed sharded
      (`qmotto.models.partitioning`).
    load_tokenizer: also build the Tokenizer from the file's metadata.

  Returns:
    (qmotto.models.Model, Tokenizer or None).
  """
  source = os.fspath(path)
  reader, metadata = open_gguf(path)
  file_shapes = {t.name: tuple(int(d) for d in reversed(t.shape.tolist())) for t in reader.tensors}
  kwargs = gguf_config_kwargs(metadata, file_shapes, source, max_seq_len=max_seq_len, dtype=dtype)
  config = _common.make_config({**kwargs, "param_dtype": param_dtype}, source)
  permuted = metadata["general.architecture"] in _PERMUTED_ARCHITECTURES
  tokenizer = None
  if load_tokenizer:  # Before the dequantization, so that a bad tokenizer fails fast.
    try:
      tokenizer = Tokenizer.from_gguf_metadata(metadata, source)
    except ValueError as e:
      raise ValueError(f"{e} (load_tokenizer=False loads the weights alone)") from e

  tensors: dict[str, Any] = {}
  # HF name -> GGUF name, for error messages (missing tensors included).
  name_map = {spec.hf_name: hf_to_gguf_name(spec.hf_name) for spec in _common.tensor_specs(config)}
  for t in reader.tensors:
    hf_name = gguf_to_hf_name(t.name)
    name_map[hf_name] = t.name
    tensors[hf_name] = t  # dequantized below, after the name / shape checks

  # Check names and (ggml-reversed) shapes before the costly dequantization.
  shapes = {hf_name: file_shapes[t.name] for hf_name, t in tensors.items()}
  _common.check_tensors(config, shapes, source, name_map=name_map)

  arrays = {}
  for hf_name, t in tensors.items():
    if hf_name.endswith(_common.IGNORED_SUFFIXES):
      continue
    w = dequantize_tensor(t, source)
    if permuted and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
      w = unpermute_qk(w, config.num_heads)
    elif permuted and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
      w = unpermute_qk(w, config.num_kv_heads)
    arrays[hf_name] = w
  shardings = None if mesh is None else partitioning.param_shardings(config, mesh)
  params = _common.load_params(config, arrays, source, name_map=name_map, shardings=shardings)
  return llama.Model(config=config, params=params, mesh=mesh), tokenizer
