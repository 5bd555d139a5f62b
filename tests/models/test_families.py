"""Qwen3, Gemma 3 and Mistral (sliding windows) against transformers' own logits.

Each family is a tiny random checkpoint written by transformers'
`save_pretrained`, loaded by qmotto, and compared with the PyTorch model's
logits: the full forward pass on prompts longer than the sliding window, and
cached decoding (a prefill, then one token at a time through the KV cache).
"""

import dataclasses

import jax
import numpy as np
import pytest

from qmotto import models
from qmotto.models.loading import load_hf_directory

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

V, D, F, L, H, KV, DH = 96, 32, 64, 4, 4, 2, 16
WINDOW = 5


def _common(**overrides):
  fields = dict(
      vocab_size=V, hidden_size=D, intermediate_size=F, num_hidden_layers=L, num_attention_heads=H,
      num_key_value_heads=KV, head_dim=DH, max_position_embeddings=64, rms_norm_eps=1e-6,
  )
  fields.update(overrides)
  return fields


def _qwen3():
  return transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**_common(tie_word_embeddings=False)))


def _qwen3_sliding():
  config = transformers.Qwen3Config(
      **_common(use_sliding_window=True, sliding_window=WINDOW, max_window_layers=2, tie_word_embeddings=True)
  )
  return transformers.Qwen3ForCausalLM(config)


def _gemma3(**overrides):
  # Layers 0-2 local (window 5, base 10000), layer 3 global (base 1e6,
  # linear scaling as the 4B+ models), a query_pre_attn_scalar that is not
  # head_dim, a final soft cap (Gemma 2's; transformers' Gemma 3 ignores the
  # attention soft cap, and so does qmotto's loader).
  fields = _common(
      sliding_window=WINDOW, query_pre_attn_scalar=24, final_logit_softcapping=8.0,
      attn_logit_softcapping=20.0, sliding_window_pattern=4,
      rope_parameters={
          "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1_000_000.0},
          "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
      },
  )
  fields.update(overrides)
  return transformers.Gemma3ForCausalLM(transformers.Gemma3TextConfig(**fields))


def _mistral():
  config = transformers.MistralConfig(**_common(sliding_window=WINDOW, head_dim=None, tie_word_embeddings=False))
  return transformers.MistralForCausalLM(config)


FAMILIES = {"qwen3": _qwen3, "qwen3_sliding": _qwen3_sliding, "gemma3": _gemma3, "mistral": _mistral}


def _save(tmp_path, name, seed=0):
  torch.manual_seed(seed)
  model = FAMILIES[name]()
  model.set_attn_implementation("eager")  # SDPA would drop the attention soft cap.
  with torch.no_grad():
    for p in model.parameters():  # norms too, so that their mapping and offsets matter.
      p.normal_(0.0, 0.3)
  model.eval()
  model.save_pretrained(tmp_path / name, safe_serialization=True)
  return model, tmp_path / name


def _torch_logits(model, tokens):
  with torch.no_grad():
    return model(torch.tensor(tokens)).logits.float().numpy()


def _rel(got, expected):
  return float(np.abs(np.asarray(got) - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_logits_match_transformers(tmp_path, name):
  torch_model, path = _save(tmp_path, name)
  model, _ = load_hf_directory(path)
  cfg = model.config
  tokens = np.random.default_rng(1).integers(0, V, size=(2, 3 * WINDOW + 2))  # longer than the window.
  expected = _torch_logits(torch_model, tokens)
  assert _rel(models.forward_logits(model, tokens), expected) < 1e-4
  if name != "qwen3":
    # The windows matter at this length: without them the logits differ.
    full = model.replace(config=dataclasses.replace(cfg, sliding_window=None, layer_types=None))
    assert _rel(models.forward_logits(full, tokens), expected) > 1e-3


def test_family_configs(tmp_path):
  cfgs = {name: load_hf_directory(_save(tmp_path, name)[1])[0].config for name in FAMILIES}
  assert cfgs["qwen3"].qk_norm and not cfgs["qwen3"].qkv_bias and cfgs["qwen3"].layer_types is None
  assert cfgs["qwen3_sliding"].layer_types == ("full_attention",) * 2 + ("sliding_attention",) * 2
  gemma = cfgs["gemma3"]
  assert (gemma.norm_offset, gemma.post_norms, gemma.embed_scale, gemma.mlp_activation) == (1.0, True, True, "gelu_tanh")
  assert gemma.layer_types == ("sliding_attention",) * 3 + ("full_attention",)
  assert (gemma.rope_theta, gemma.local_rope_theta, dict(gemma.rope_scaling)["factor"]) == (1e6, 1e4, 4.0)
  assert (gemma.query_pre_attn_scalar, gemma.attn_logit_softcap, gemma.final_logit_softcap) == (24.0, None, 8.0)
  assert gemma.tie_embeddings
  assert cfgs["mistral"].layer_types == ("sliding_attention",) * L and cfgs["mistral"].sliding_window == WINDOW


_apply = jax.jit(lambda model, tokens, positions, cache: model.apply(tokens, positions, cache))


@pytest.mark.parametrize("name", ["gemma3", "mistral", "qwen3"])
def test_cached_decoding_matches_transformers(tmp_path, name):
  """Prefill 4 tokens, then decode one token at a time past the window: each
  step's logits equal transformers' full forward pass at that position."""
  torch_model, path = _save(tmp_path, name, seed=2)
  model, _ = load_hf_directory(path)
  total = 3 * WINDOW
  tokens = np.random.default_rng(4).integers(0, V, size=(2, total))
  expected = _torch_logits(torch_model, tokens)
  cache = models.init_cache(model.config, 2, total)
  positions = np.broadcast_to(np.arange(total), (2, total))
  logits, cache = _apply(model, tokens[:, :4], positions[:, :4], cache)
  assert _rel(logits, expected[:, :4]) < 1e-4
  for t in range(4, total):
    logits, cache = _apply(model, tokens[:, t:t + 1], positions[:, t:t + 1], cache)
    assert _rel(logits[:, 0], expected[:, t]) < 1e-4, t


def test_gemma3_multimodal_and_bidirectional_are_refused(tmp_path):
  _, path = _save(tmp_path, "gemma3")
  config = (path / "config.json").read_text()
  (path / "config.json").write_text(config.replace('"use_bidirectional_attention": false', '"use_bidirectional_attention": true'))
  with pytest.raises(ValueError, match="use_bidirectional_attention=true is not supported"):
    load_hf_directory(path)
