"""Hugging Face directory loader: weight mapping, dtypes, shards, errors; and
logits against transformers' PyTorch models (skipped without torch/transformers)."""

import json
import dataclasses
import os

import ml_dtypes
import jax
import numpy as np
import pytest

pytest.importorskip("safetensors")
from safetensors.numpy import save_file  # noqa: E402

from qmotto.models import forward_logits  # noqa: E402
from qmotto.models.loading import Tokenizer  # noqa: E402
from qmotto.models.loading import load_hf_directory  # noqa: E402
from qmotto.models.loading import load_model  # noqa: E402
from qmotto.models.loading.hf import hf_config_kwargs  # noqa: E402
from . import helpers

V, D, F, L, H, KV = 100, 64, 128, 2, 4, 2
DH = D // H


def _hf_config(arch="LlamaForCausalLM", tie=False, **overrides):
  config = {
      "architectures": [arch],
      "model_type": "llama" if arch == "LlamaForCausalLM" else "qwen2",
      "vocab_size": V,
      "hidden_size": D,
      "intermediate_size": F,
      "num_hidden_layers": L,
      "num_attention_heads": H,
      "num_key_value_heads": KV,
      "rms_norm_eps": 1e-5,
      "rope_theta": 5000.0,
      "max_position_embeddings": 256,
      "tie_word_embeddings": tie,
      "hidden_act": "silu",
  }
  config.update(overrides)
  return config


def _hf_tensors(qkv_bias=False, tie=False, seed=0):
  return helpers.random_hf_tensors(
      vocab=V, hidden=D, ffn=F, layers=L, heads=H, kv_heads=KV, qkv_bias=qkv_bias, tie=tie, seed=seed
  )


def _write_dir(path, config, tensors, shards=1, dtype=None):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(config, f)
  if dtype is not None:
    tensors = {k: v.astype(dtype) for k, v in tensors.items()}
  names = sorted(tensors)
  if shards == 1:
    save_file(tensors, os.path.join(path, "model.safetensors"))
    return path
  weight_map = {}
  for s in range(shards):
    file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
    part = {n: tensors[n] for n in names[s::shards]}
    save_file(part, os.path.join(path, file))
    weight_map.update({n: file for n in part})
  with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {}, "weight_map": weight_map}, f)
  return path


def _load_dir(path, **kwargs):
  """(config, params, tokenizer) of load_hf_directory."""
  model, tokenizer = load_hf_directory(path, **kwargs)
  return model.config, model.params, tokenizer


def _check_mapping(params, tensors, config):
  assert params["embed"]["embedding"].shape == (V, D)
  np.testing.assert_array_equal(params["embed"]["embedding"], tensors["model.embed_tokens.weight"])
  np.testing.assert_array_equal(params["final_norm"]["scale"], tensors["model.norm.weight"])
  for i in range(L):
    p, lay = f"model.layers.{i}.", jax.tree.map(lambda x, i=i: x[i], params["layers"])
    np.testing.assert_array_equal(lay["attn_norm"]["scale"], tensors[p + "input_layernorm.weight"])
    np.testing.assert_array_equal(lay["mlp_norm"]["scale"], tensors[p + "post_attention_layernorm.weight"])
    for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
      np.testing.assert_array_equal(lay["attn"][ours]["kernel"], tensors[p + f"self_attn.{theirs}.weight"].T)
      if config.qkv_bias and ours != "o":
        np.testing.assert_array_equal(lay["attn"][ours]["bias"], tensors[p + f"self_attn.{theirs}.bias"])
      else:
        assert "bias" not in lay["attn"][ours]
    for name in ("gate", "up", "down"):
      np.testing.assert_array_equal(lay["mlp"][name]["kernel"], tensors[p + f"mlp.{name}_proj.weight"].T)
  if config.tie_embeddings:
    assert "lm_head" not in params
  else:
    np.testing.assert_array_equal(params["lm_head"]["kernel"], tensors["lm_head.weight"].T)
  assert set(params) == {"embed", "final_norm", "layers"} | (
      set() if config.tie_embeddings else {"lm_head"}
  )


@pytest.mark.parametrize(
    "arch,tie,shards",
    [("LlamaForCausalLM", False, 1), ("LlamaForCausalLM", True, 3), ("Qwen2ForCausalLM", False, 2)],
)
def test_numpy_directory_weight_mapping(tmp_path, arch, tie, shards):
  qkv_bias = arch == "Qwen2ForCausalLM"
  tensors = _hf_tensors(qkv_bias=qkv_bias, tie=tie)
  path = _write_dir(tmp_path / "m", _hf_config(arch, tie), tensors, shards=shards)
  config, params, tokenizer = _load_dir(path)
  assert tokenizer is None
  assert (config.vocab_size, config.hidden_size, config.intermediate_size) == (V, D, F)
  assert (config.num_layers, config.num_heads, config.num_kv_heads, config.head_dim) == (L, H, KV, DH)
  assert config.rope_theta == 5000.0 and config.rms_norm_eps == 1e-5 and config.max_seq_len == 256
  assert config.tie_embeddings == tie and config.qkv_bias == qkv_bias
  _check_mapping(params, tensors, config)
  for leaf in __import__("jax").tree.leaves(params):
    assert leaf.dtype == np.float32
  logits = forward_logits((config, params), np.array([[1, 2, 3]]))
  assert logits.shape == (1, 3, V) and np.all(np.isfinite(logits))


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
def test_half_precision_upcast(tmp_path, dtype):
  tensors = _hf_tensors()
  path = _write_dir(tmp_path / "m", _hf_config(), tensors, dtype=dtype)
  config, params, _ = _load_dir(path, max_seq_len=64)
  assert config.max_seq_len == 64
  rounded = {k: v.astype(dtype).astype(np.float32) for k, v in tensors.items()}
  _check_mapping(params, rounded, config)


def test_transformers5_rope_parameters_and_head_dim(tmp_path):
  config = _hf_config(rope_parameters={"rope_type": "default", "rope_theta": 1234.0}, head_dim=DH)
  del config["rope_theta"]
  path = _write_dir(tmp_path / "m", config, _hf_tensors())
  cfg, _, _ = _load_dir(path)
  assert cfg.rope_theta == 1234.0 and cfg.head_dim == DH


def test_tokenizer_from_directory(tmp_path):
  tokenizers = pytest.importorskip("tokenizers")
  from tokenizers import decoders, models, pre_tokenizers, processors

  alphabet = pre_tokenizers.ByteLevel.alphabet()
  vocab = {"<s>": 0, "</s>": 1}
  for ch in sorted(alphabet):
    vocab[ch] = len(vocab)
  merges = [("h", "e"), ("l", "l"), ("he", "ll")]
  for a, b in merges:
    vocab[a + b] = len(vocab)
  tok = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=merges))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.add_special_tokens(["<s>", "</s>"])
  tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
  path = _write_dir(tmp_path / "m", _hf_config(vocab_size=V), _hf_tensors())
  tok.save(os.path.join(path, "tokenizer.json"))
  template = "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{{ eos_token }}{% endfor %}"
  with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
    json.dump({"bos_token": "<s>", "eos_token": {"content": "</s>"}, "chat_template": template}, f)

  model, tokenizer = load_model(path)
  assert isinstance(tokenizer, Tokenizer)
  assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, tokenizer.add_bos) == (0, 1, 1, True)
  ids = tokenizer.encode("hello")
  assert ids[0] == 0 and ids[1] == vocab["hell"]
  assert tokenizer.decode(ids) == "<s>hello"
  assert tokenizer.decode(ids, skip_special_tokens=True) == "hello"
  assert tokenizer.encode("hello", add_bos=False) == ids[1:]
  text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=False)
  assert text == "<s>[user]hi</s>"
  assert tokenizer.encode_chat([{"role": "user", "content": "hi"}])[:1] == [0]
  assert model.config.vocab_size == V
  with pytest.raises(ValueError, match="role"):
    tokenizer.apply_chat_template([{"content": "no role"}])


# ----------------------------------------------------------------------------
# Errors.


def test_missing_directory(tmp_path):
  with pytest.raises(ValueError, match="not a directory"):
    load_hf_directory(tmp_path / "nope")


def test_missing_config(tmp_path):
  (tmp_path / "m").mkdir()
  with pytest.raises(ValueError, match="config.json is missing"):
    load_hf_directory(tmp_path / "m")


def test_malformed_config(tmp_path):
  path = _write_dir(tmp_path / "m", _hf_config(), _hf_tensors())
  with open(os.path.join(path, "config.json"), "w") as f:
    f.write("{not json")
  with pytest.raises(ValueError, match=r"config.json: malformed config.json"):
    load_hf_directory(path)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"architectures": ["GPT2LMHeadModel"]}, r"unsupported architecture \['GPT2LMHeadModel'\]; supported: \['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM', 'Gemma3ForCausalLM'\]"),
        ({"architectures": ["Gemma3ForConditionalGeneration"]}, r"unsupported architecture \['Gemma3ForConditionalGeneration'\]"),
        ({"architectures": None, "model_type": "gpt2"}, "'architectures' is missing"),
        ({"hidden_size": None}, "required field 'hidden_size' is missing"),
        ({"num_hidden_layers": "2"}, "field 'num_hidden_layers' must be int"),
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "rope_scaling of type 'llama3' lacks low_freq_factor"),
        ({"rope_scaling": {"type": "dynamic", "factor": 2.0}}, "rope_scaling type 'dynamic' is not supported"),
        ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1.0}}, "rope_parameters type 'yarn' is not supported"),
        ({"hidden_act": "gelu"}, "hidden_act='gelu' is not supported"),
        ({"attention_bias": True}, "attention_bias=true is not supported"),
        ({"mlp_bias": True}, "mlp_bias=true is not supported"),
        ({"num_attention_heads": 3}, "hidden_size=64 is not a multiple of num_attention_heads=3"),
        ({"num_key_value_heads": 3}, "num_heads=4 must be a multiple of num_kv_heads=3"),
    ],
)
def test_bad_config_fields(tmp_path, overrides, match):
  path = _write_dir(tmp_path / "m", _hf_config(**overrides), _hf_tensors())
  with pytest.raises(ValueError, match=match):
    load_hf_directory(path)


def test_qwen2_sliding_window_layers():
  # Qwen2/3 slide only with use_sliding_window, on the layers from max_window_layers on.
  kwargs = hf_config_kwargs(_hf_config("Qwen2ForCausalLM", use_sliding_window=True, sliding_window=8, max_window_layers=1))
  assert kwargs["sliding_window"] == 8 and kwargs["layer_types"] == ("full_attention", "sliding_attention")
  kwargs = hf_config_kwargs(_hf_config("Qwen2ForCausalLM", use_sliding_window=False, sliding_window=8))
  assert kwargs["sliding_window"] is None and kwargs["layer_types"] is None


def test_missing_tensor(tmp_path):
  tensors = _hf_tensors()
  del tensors["model.layers.1.mlp.up_proj.weight"]
  path = _write_dir(tmp_path / "m", _hf_config(), tensors)
  with pytest.raises(ValueError, match=r"missing tensors .*model\.layers\.1\.mlp\.up_proj\.weight"):
    load_hf_directory(path)


def test_untied_config_without_lm_head(tmp_path):
  path = _write_dir(tmp_path / "m", _hf_config(tie=False), _hf_tensors(tie=True))
  with pytest.raises(ValueError, match=r"missing tensors .*tie_embeddings=False.*lm_head\.weight"):
    load_hf_directory(path)


def test_qwen2_without_biases(tmp_path):
  path = _write_dir(tmp_path / "m", _hf_config("Qwen2ForCausalLM"), _hf_tensors(qkv_bias=False))
  with pytest.raises(ValueError, match=r"missing tensors .*q_proj\.bias"):
    load_hf_directory(path)


def test_shape_mismatch(tmp_path):
  tensors = _hf_tensors()
  tensors["model.layers.0.self_attn.k_proj.weight"] = np.zeros((H * DH, D), np.float32)
  path = _write_dir(tmp_path / "m", _hf_config(), tensors)
  with pytest.raises(
      ValueError,
      match=r"tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape \[64, 64\], but the config expects \[32, 64\]",
  ):
    load_hf_directory(path)


def test_vocab_mismatch(tmp_path):
  path = _write_dir(tmp_path / "m", _hf_config(vocab_size=V + 1), _hf_tensors())
  with pytest.raises(ValueError, match=r"'model\.embed_tokens\.weight' has shape \[100, 64\], but the config expects \[101, 64\]"):
    load_hf_directory(path)


def test_unexpected_tensor(tmp_path):
  tensors = _hf_tensors()
  tensors["model.layers.0.self_attn.o_proj.bias"] = np.zeros((D,), np.float32)
  tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = np.zeros((DH // 2,), np.float32)  # ignored
  path = _write_dir(tmp_path / "m", _hf_config(), tensors)
  with pytest.raises(ValueError, match=r"no parameter for .*: model\.layers\.0\.self_attn\.o_proj\.bias\.$"):
    load_hf_directory(path)


def test_missing_shard(tmp_path):
  path = _write_dir(tmp_path / "m", _hf_config(), _hf_tensors(), shards=2)
  os.remove(os.path.join(path, "model-00002-of-00002.safetensors"))
  with pytest.raises(ValueError, match=r"shard 'model-00002-of-00002\.safetensors' is listed but missing"):
    load_hf_directory(path)


def test_no_weights(tmp_path):
  path = tmp_path / "m"
  path.mkdir()
  (path / "config.json").write_text(json.dumps(_hf_config()))
  (path / "pytorch_model.bin").write_bytes(b"")
  with pytest.raises(ValueError, match=r"no \*\.safetensors weight files \(found \['pytorch_model\.bin'\]"):
    load_hf_directory(path)


def test_corrupt_safetensors(tmp_path):
  path = _write_dir(tmp_path / "m", _hf_config(), _hf_tensors())
  with open(os.path.join(path, "model.safetensors"), "r+b") as f:
    f.truncate(100)
  with pytest.raises(ValueError, match=r"model\.safetensors: cannot read safetensors file"):
    load_hf_directory(path)


def test_nonfinite_weights(tmp_path):
  tensors = _hf_tensors()
  tensors["model.norm.weight"][3] = np.nan
  path = _write_dir(tmp_path / "m", _hf_config(), tensors)
  with pytest.raises(ValueError, match=r"'model\.norm\.weight' holds NaN"):
    load_hf_directory(path)


# ----------------------------------------------------------------------------
# Against transformers (PyTorch).


def _torch_model(arch, tie, seed=0, rope_scaling=None):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  common = dict(
      vocab_size=V, hidden_size=D, intermediate_size=F, num_hidden_layers=L, num_attention_heads=H,
      num_key_value_heads=KV, rms_norm_eps=1e-5, max_position_embeddings=128, tie_word_embeddings=tie,
  )
  torch.manual_seed(seed)
  if arch == "llama":
    if rope_scaling is None:
      config = transformers.LlamaConfig(rope_theta=5000.0, **common)
    else:  # transformers 5 keeps the scaling in rope_parameters.
      config = transformers.LlamaConfig(rope_parameters={"rope_theta": 5000.0, **rope_scaling}, **common)
    model = transformers.LlamaForCausalLM(config)
  else:
    config = transformers.Qwen2Config(rope_theta=5000.0, **common)
    model = transformers.Qwen2ForCausalLM(config)
  with torch.no_grad():
    for p in model.parameters():  # biases and norms too, so that their mapping matters
      p.normal_(0.0, 0.2)
  if tie:
    model.tie_weights()
  return model.eval()


@pytest.mark.parametrize("arch,tie", [("llama", False), ("llama", True), ("qwen2", False), ("qwen2", True)])
def test_against_transformers(tmp_path, arch, tie):
  torch = pytest.importorskip("torch")
  model = _torch_model(arch, tie)
  model.save_pretrained(tmp_path / "m", safe_serialization=True)
  config, params, _ = _load_dir(tmp_path / "m")
  assert config.tie_embeddings == tie and config.qkv_bias == (arch == "qwen2")
  assert config.rope_theta == 5000.0

  state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
  if tie:
    state.pop("lm_head.weight", None)
  _check_mapping(params, state, config)

  tokens = np.random.default_rng(1).integers(0, V, size=(3, 11))
  with torch.no_grad():
    expected = model(torch.tensor(tokens)).logits.numpy()
  got = np.asarray(forward_logits((config, params), tokens))
  rel = np.abs(got - expected).max() / np.abs(expected).max()
  assert rel < 1e-4, rel


# Small wavelengths against original_max_position_embeddings=16, so that the
# test's positions (up to 40) meet the slowed, the kept and the ramped bands.
_LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 16}


@pytest.mark.parametrize("scaling", [_LLAMA3, {"rope_type": "linear", "factor": 3.0}], ids=["llama3", "linear"])
def test_rope_scaling_against_transformers(tmp_path, scaling):
  torch = pytest.importorskip("torch")
  model = _torch_model("llama", False, seed=5, rope_scaling=scaling)
  model.save_pretrained(tmp_path / "m", safe_serialization=True)
  config, params, _ = _load_dir(tmp_path / "m")
  assert dict(config.rope_scaling) == {k: (v if k == "rope_type" else float(v)) for k, v in scaling.items()}
  tokens = np.random.default_rng(3).integers(0, V, size=(2, 40))
  with torch.no_grad():
    expected = model(torch.tensor(tokens)).logits.numpy()
  got = np.asarray(forward_logits((config, params), tokens))
  assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-4
  # The scaling matters at these positions: plain RoPE gives other logits.
  plain = np.asarray(forward_logits((dataclasses.replace(config, rope_scaling=None), params), tokens))
  assert np.abs(plain - expected).max() / np.abs(expected).max() > 1e-2


def test_against_transformers_sharded_bf16(tmp_path):
  torch = pytest.importorskip("torch")
  model = _torch_model("llama", False, seed=3).to(torch.bfloat16)
  model.save_pretrained(tmp_path / "m", safe_serialization=True, max_shard_size="40KB")
  assert os.path.isfile(tmp_path / "m" / "model.safetensors.index.json")
  config, params, _ = _load_dir(tmp_path / "m")
  state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
  _check_mapping(params, state, config)
  model = model.float()
  tokens = np.random.default_rng(2).integers(0, V, size=(2, 9))
  with torch.no_grad():
    expected = model(torch.tensor(tokens)).logits.numpy()
  got = np.asarray(forward_logits((config, params), tokens))
  assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-4


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd", "sub/../../x.safetensors"])
def test_weight_map_entries_outside_the_directory_are_refused(tmp_path, shard):
  path = _write_dir(str(tmp_path / "m"), _hf_config(), _hf_tensors(), shards=2)
  (tmp_path / "outside.safetensors").write_bytes(b"")  # exists, so only the path check can refuse it.
  index_file = os.path.join(path, "model.safetensors.index.json")
  with open(index_file) as f:
    index = json.load(f)
  name = sorted(index["weight_map"])[0]
  index["weight_map"][name] = shard
  with open(index_file, "w") as f:
    json.dump(index, f)
  with pytest.raises(ValueError, match=f"weight_map entry '{name}' -> .* points outside the model directory"):
    load_model(path)


def test_shards_linked_from_elsewhere_load(tmp_path):
  # Hugging Face's cache links a snapshot's shards to blobs in another folder.
  path = _write_dir(str(tmp_path / "blobs"), _hf_config(), _hf_tensors(), shards=2)
  snapshot = tmp_path / "snapshot"
  snapshot.mkdir()
  for name in os.listdir(path):
    os.symlink(os.path.join(path, name), snapshot / name)
  model, _ = load_model(str(snapshot))
  reference, _ = load_model(path)
  np.testing.assert_array_equal(model.params["embed"]["embedding"], reference.params["embed"]["embedding"])


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("num_hidden_layers", 1_000_000, r"LlamaConfig.num_layers must be an int in \[1, 4096\], got 1000000"),
        ("vocab_size", 10**9, r"LlamaConfig.vocab_size must be an int in \[1, 16777216\]"),
        ("hidden_size", 2**20, r"LlamaConfig.hidden_size must be an int in \[1, 131072\]"),
        ("num_attention_heads", 0, "num_attention_heads"),
    ],
)
def test_absurd_sizes_are_refused_before_any_allocation(tmp_path, field, value, match):
  path = _write_dir(str(tmp_path / "m"), _hf_config(**{field: value}), _hf_tensors())
  with pytest.raises(ValueError, match=match):
    load_model(path)


def test_a_huge_parameter_count_is_refused():
  from qmotto.models import LlamaConfig  # pylint: disable=g-import-not-at-top

  with pytest.raises(ValueError, match="parameters .* is beyond the supported 1e\\+13"):
    LlamaConfig(vocab_size=2**24, hidden_size=2**17, intermediate_size=2**20, num_layers=4096,
                num_heads=2**10, num_kv_heads=2**10)
