"""Tests of the pass@k runner end to end (qmotto.evals.passk), its files and plots, config and absl runner.

The fake task and tiny checkpoint are in tests/evals/helpers.py; the
resume test is in test_chunks.py, config and model errors in
test_run_config.py and test_run_setup.py.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import passk as passk_config
from qmotto.evals import outputs
from qmotto.evals import passk
from qmotto.evals import report
from tests.evals import helpers as evals_helpers
from tests.models import helpers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_smoke_run_rows_files_and_summary(reference):
  config, result, paths = reference
  rows = result["rows"]
  assert {(r["sampler"], r["k"]) for r in rows} == {(s, k) for s in config.samplers for k in config.ks}
  for r in rows:
    for field in outputs.SUMMARY_FIELDS:
      assert field in r, field
    assert r["task"] == "fake_add" and r["model"] == "fake_add" and r["style"] == "compact"
    assert r["ci_low"] <= r["pass_at_k"] <= r["ci_high"]
    assert 0 <= r["distinct_per_group"] <= r["k"]
    assert r["pass_at_k"] <= r["union_bound"] + 0.35  # a loose sanity check on 8 problems.
  # The union bound uses p_i from the i.i.d. samples.
  p = np.array(result["answer_probs"])
  for r in rows:
    assert r["union_bound"] == pytest.approx(np.minimum(1, r["k"] * p).mean(), abs=1e-5)
  # A random model over 12 characters: some answers right, several distinct answers per group.
  assert 0 < result["mean_pass_at_1"] < 1
  assert max(r["distinct_per_group"] for r in rows if r["k"] == 8) > 1.5
  assert paths["json"] == os.path.join(config.output_dir, "fake_add_fake_add.json")
  assert json.load(open(paths["json"]))["rows"] == json.loads(json.dumps(rows))
  with open(paths["png"], "rb") as f:
    assert f.read(8) == PNG_MAGIC
  summary = json.load(open(paths["summary"]))
  assert len(summary) == len(rows) and {"saved_low", "saved_high", "union_bound"} <= set(summary[0])
  assert "lattice" in report.format_table(rows, list(config.ks_shown))
  assert not [f for f in os.listdir(config.output_dir) if f.startswith((".tmp", ".qmotto"))]  # no lock left.
  assert not [f for f in os.listdir(config.workdir) if f.startswith(".qmotto")]


def test_entry_points_stay_on_passk():
  # experiments/passk.py, the quickstart notebook and users call these from qmotto.evals.passk.
  for name in ("run", "run_and_save", "setup", "check_config", "build_summary", "save_outputs"):
    assert callable(getattr(passk, name)), name


def test_config_variants():
  config = passk_config.get_config("task=countdown")
  assert config.model == "checkpoints/countdown" and config.task == "countdown" and config.style == "auto"
  config = passk_config.get_config("model=smollm2,task=chain_sum")
  assert config.model == "smollm2-135m-instruct" and config.style == "chat" and config.max_new_tokens > 0
  assert config.num_problems < passk_config.get_config("task=countdown").num_problems
  smoke = passk_config.get_config("smoke")
  assert smoke.num_problems <= 8 and smoke.output_dir.startswith("/tmp")
  for bad in ("huge", "task=", "model=smollm2", "size=3"):
    with pytest.raises(ValueError, match="configs/passk.py"):
      passk_config.get_config(bad)


def _real_tasks():
  try:
    from qmotto import tasks  # pylint: disable=g-import-not-at-top
  except ImportError:
    pytest.skip("qmotto.tasks is not available yet")
  return tasks


def test_real_task_names_checked_before_loading():
  _real_tasks()
  config = passk_config.get_config("task=nonexistent")  # checkpoints/nonexistent does not exist either.
  with pytest.raises(ValueError, match="unknown task 'nonexistent'; allowed: .*countdown"):
    passk.run(config)


def test_real_task_command_line(tmp_path):
  _real_tasks()
  name = evals_helpers.save_real_task_checkpoint(tmp_path / "ckpt", max_new_tokens=12)
  out = tmp_path / "out"
  proc = subprocess.run(
      [sys.executable, "experiments/passk.py", "--config=configs/passk.py:smoke",
       f"--config.model={tmp_path / 'ckpt'}", f"--config.output_dir={out}",
       f"--config.workdir={tmp_path / 'work'}", "--config.num_problems=2",
       "--config.samplers=('iid','lattice')", "--config.problems_per_call=2"],
      cwd=REPO, capture_output=True, text=True, timeout=300,
      env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "pass@k" in proc.stdout
  assert (out / f"{name}_ckpt.json").exists() and (out / "summary.json").exists()


def _byte_level_hf_dir(path):
  """A random 2-layer Llama in a Hugging Face directory with a byte-level tokenizer and chat template."""
  tokenizers = pytest.importorskip("tokenizers")
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  from tokenizers import decoders, pre_tokenizers  # pylint: disable=g-import-not-at-top

  vocab = {"<s>": 0, "</s>": 1}
  for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
    vocab[ch] = len(vocab)
  tok = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=[]))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.add_special_tokens(["<s>", "</s>"])
  os.makedirs(path)
  tok.save(os.path.join(path, "tokenizer.json"))
  template = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{{ eos_token }}{% endfor %}[assistant]"
  with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "chat_template": template}, f)
  dims = dict(vocab=len(vocab), hidden=32, ffn=64, layers=2, heads=4, kv_heads=2)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": dims["vocab"],
               "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "max_position_embeddings": 256,
               "tie_word_embeddings": False, "hidden_act": "silu"}, f)
  save_file(helpers.random_hf_tensors(**dims), os.path.join(path, "model.safetensors"))
  return str(path)


def test_chat_style_with_a_hugging_face_directory(tmp_path):
  _real_tasks()
  path = _byte_level_hf_dir(tmp_path / "tiny-chat")
  config = passk_config.get_config("model=" + path + ",task=chain_sum,chat,smoke")
  assert config.style == "chat" and config.max_new_tokens == 16
  config.output_dir, config.workdir, config.progress = str(tmp_path / "out"), str(tmp_path / "work"), False
  assert config.chat_shots == 3
  config.chat_shots = 5
  config.max_new_tokens = 6
  with pytest.raises(ValueError, match=r"shorten the prompts \(config.chat_shots=5"):  # the tiny model's 256 positions
    passk.run(config)
  config.chat_shots = 0
  config.samplers, config.ks, config.max_new_tokens = ("iid", "lattice"), (1, 8), 0
  with pytest.raises(ValueError, match="set config.max_new_tokens"):  # no checkpoint metadata to take it from.
    passk.run(config)
  config.max_new_tokens = 6
  result, paths = passk.run_and_save(config)
  assert result["style"] == "chat" and result["model"] == "tiny-chat" and result["task"] == "chain_sum"
  assert os.path.basename(paths["json"]) == "chain_sum_tiny-chat.json"
  stats = result["samplers"]["iid"]
  assert stats["samples"] == 2 * 2 * 8 and 1 <= stats["mean_completion_tokens"] <= 6
  assert stats["answered"] > 0  # extract_answer falls back to the last line of the reply.
