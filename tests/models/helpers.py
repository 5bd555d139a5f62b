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


def save_tiny_hf_checkpoint(path, *, seed: int = 0):
  """A tiny random Qwen2 Hugging Face directory with a byte-level BPE tokenizer and a chat template.

  Vocabulary 264 (2 specials, 256 byte symbols, 6 extra specials), hidden 32,
  4 heads, 2 key/value heads, 2 layers: every size divides 1, 2 and 4
  devices. Returns the directory.
  """
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top

  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  from tokenizers import Tokenizer, decoders, models as tok_models, pre_tokenizers  # pylint: disable=g-import-not-at-top

  os.makedirs(path, exist_ok=True)
  vocab = {"<|endoftext|>": 0, "<|im_end|>": 1}
  for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
    vocab[ch] = len(vocab)
  size = 264
  tok = Tokenizer(tok_models.BPE(vocab=vocab, merges=[]))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  extras = [f"<|extra_{i}|>" for i in range(size - len(vocab))]  # every id decodes, as in real vocabularies.
  tok.add_special_tokens(["<|endoftext|>", "<|im_end|>", *extras])
  tok.save(os.path.join(path, "tokenizer.json"))
  template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|im_end|>{% endfor %}assistant:"
  with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
    json.dump({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": template}, f)
  tensors = random_hf_tensors(vocab=size, hidden=32, ffn=64, layers=2, heads=4, kv_heads=2, qkv_bias=True, seed=seed)
  save_file(tensors, os.path.join(path, "model.safetensors"))
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": size, "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "eos_token_id": 1,
    }, f)
  return path


def cache_hub_repo(hf_home, repo_id, source_dir, *, extra_files=()):
  """Lays out `source_dir`'s files as huggingface_hub caches a download under `hf_home`.

  Blobs, a snapshot of relative links to them, refs/main: what
  `snapshot_download` finds with HF_HUB_OFFLINE=1. `extra_files` are
  stand-in files qmotto must not need (e.g. "pytorch_model.bin"). Returns
  the snapshot directory.
  """
  import os  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top

  commit = "0123456789abcdef0123456789abcdef01234567"
  repo = os.path.join(hf_home, "hub", "models--" + repo_id.replace("/", "--"))
  snapshot = os.path.join(repo, "snapshots", commit)
  for folder in ("blobs", "refs", snapshot):
    os.makedirs(os.path.join(repo, folder), exist_ok=True)
  with open(os.path.join(repo, "refs", "main"), "w") as f:
    f.write(commit)
  names = sorted(os.listdir(source_dir)) + list(extra_files)
  for i, name in enumerate(names):
    blob = os.path.join(repo, "blobs", f"{i:040x}")
    if name in extra_files:
      with open(blob, "wb") as f:
        f.write(b"bytes qmotto never reads")
    else:
      shutil.copy(os.path.join(source_dir, name), blob)
    os.symlink(os.path.relpath(blob, snapshot), os.path.join(snapshot, name))
  return snapshot
