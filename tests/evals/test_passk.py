"""Tests of the pass@k runner (qmotto.passk), its plots, config and absl runner.

A tiny random character-level model is saved as an orbax checkpoint in a
temporary directory; the task is a fake with the `qmotto.tasks` interface
(single-digit sums), so these tests do not depend on the real task suite.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from qmotto import models
from qmotto.evals import passk
from qmotto.evals import report
from qmotto.models import loading
from tests.models import helpers

from tests.fakes import Problem

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from configs import passk as passk_config  # noqa: E402

CHARSET = "0123456789+="
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class FakeTask:
  """The `qmotto.tasks.Task` interface: a + b with a, b < limit, answered by one digit."""

  limit: int = 4
  name: str = "fake_add"

  @property
  def options_dict(self):
    return {"limit": self.limit}

  def to_dict(self):
    return {"name": self.name, "options": self.options_dict}

  def problems(self, split, n, start=0):
    offset = 0 if split == "test" else 1000
    out = []
    for i in range(start, start + n):
      a, b = (7 * (i + offset)) % self.limit, (3 * (i + offset) + 1) % self.limit
      out.append(Problem(i, f"{a}+{b}", str(a + b), {}))
    return out

  def compact_prompt(self, p):
    return p.question + "="

  def chat_messages(self, p):
    return [{"role": "user", "content": f"What is {p.question}?"}]

  def compact_charset(self):
    return CHARSET

  def score_text(self, p, text, style):
    return float(text[:1] == p.answer)

  def compact_to_answer(self, p, completion):
    return completion[:1] or None


def fake_tasks_module():
  return types.SimpleNamespace(
      TASK_NAMES=("fake_add",),
      get_task=lambda name, **options: FakeTask(**options),
      Task=types.SimpleNamespace(from_dict=lambda d: FakeTask(**d["options"])),
      extract_answer=lambda text: text[:1] or None,
  )


def save_model(path, *, chars=CHARSET, task=FakeTask(), seed=0, max_new_tokens=4):
  tokenizer = loading.CharTokenizer(chars)
  config = helpers.tiny_config(vocab_size=tokenizer.vocab_size, max_seq_len=32)
  model = models.Model(config=config, params=helpers.random_params(config, seed, scale=1.0))
  metadata = {"tokenizer": tokenizer.to_dict(), "style": "compact", "max_new_tokens": max_new_tokens}
  if task is not None:
    metadata["task"] = task.to_dict()
  loading.save_checkpoint(path, model, 1, metadata=metadata)
  return str(path)


def smoke_config(model_path, tmp_path, name="run"):
  config = passk_config.get_config("smoke")
  config.model = model_path
  assert config.samplers == ("iid", "lattice", "stratified") and config.ks == (1, 2, 8)
  config.output_dir = str(tmp_path / name / "out")
  config.workdir = str(tmp_path / name / "work")
  config.progress = False
  return config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  return save_model(tmp_path_factory.mktemp("ckpt") / "fake_add")


@pytest.fixture(scope="module")
def reference(checkpoint, tmp_path_factory):
  """An uninterrupted smoke run, written out: (config, result, paths)."""
  config = smoke_config(checkpoint, tmp_path_factory.mktemp("reference"))
  result, paths = passk.run_and_save(config, task=FakeTask())
  return config, result, paths


def test_smoke_run_rows_files_and_summary(reference):
  config, result, paths = reference
  rows = result["rows"]
  assert {(r["sampler"], r["k"]) for r in rows} == {(s, k) for s in config.samplers for k in config.ks}
  for r in rows:
    for field in passk.SUMMARY_FIELDS:
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
  assert not [f for f in os.listdir(config.output_dir) if f.startswith(".tmp")]


def test_resume_after_interruption_equals_uninterrupted(reference, checkpoint, tmp_path):
  ref_config, ref, _ = reference
  config = smoke_config(checkpoint, tmp_path)
  calls = []

  def interrupt(sampler, size, chunk):
    calls.append((sampler, size, chunk))
    if len(calls) == 3:
      raise KeyboardInterrupt("killed midway")

  with pytest.raises(KeyboardInterrupt):
    passk.run_and_save(config, task=FakeTask(), on_chunk=interrupt)
  assert not os.path.exists(config.output_dir)  # no result file that looks complete.
  result, paths = passk.run_and_save(config, task=FakeTask())
  assert result["rows"] == ref["rows"]
  assert result["per_problem_pass_at_k"] == ref["per_problem_pass_at_k"]
  loaded = sum(s["loaded_chunks"] for s in result["samplers"].values())
  assert loaded == 3
  assert os.path.exists(paths["json"])
  # A config change that alters the samples uses a new directory, not stale chunks.
  config.seed = 1
  changed = passk.run(config, task=FakeTask())
  assert changed["workdir"] != result["workdir"]
  assert sum(s["loaded_chunks"] for s in changed["samplers"].values()) == 0


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("samplers", ("iid", "latice"), "unknown"),
        ("samplers", ("lattice", "sobol"), "must include 'iid'"),
        ("ks", (1, 2, 16), "exceeds config.group_size"),
        ("samplers", ("iid", "sobol"), None),
        ("ks", (4, 2), "strictly increasing"),
        ("group_size", 12, "group_size=12 for sampler 'sobol'"),
        ("style", "prose", "config.style"),
        ("task_options", "{bad", "JSON"),
        ("max_new_tokens", 40, "max_seq_len=32"),
    ],
)
def test_bad_config_raises(checkpoint, tmp_path, field, value, match):
  config = smoke_config(checkpoint, tmp_path)
  config[field] = value
  if match is None:  # k=3: no valid Sobol sub-group, and no Sobol group of 3 either.
    config.ks, match = (1, 3, 8), "k=3 is not allowed for sampler 'sobol'"
  if field == "group_size":
    config.samplers = ("iid", "sobol")
  with pytest.raises(ValueError, match=match):
    passk.run(config, task=FakeTask())
  assert not os.path.exists(config.output_dir)


def test_task_resolution_and_mismatch(checkpoint, tmp_path, monkeypatch):
  monkeypatch.setattr(passk, "_tasks_module", fake_tasks_module)
  config = smoke_config(checkpoint, tmp_path)
  # The task comes from the checkpoint's metadata when config.task is empty.
  model, tokenizer, metadata = passk.load_model(checkpoint)
  assert passk.resolve_task(config, metadata) == FakeTask()
  config.task = "fake_add"
  assert passk.resolve_task(config, metadata) == FakeTask()
  config.task = "nonexistent"
  with pytest.raises(ValueError, match="unknown task 'nonexistent'"):
    passk.run(config)
  config.task = "fake_add"
  config.task_options = json.dumps({"limit": 5})
  with pytest.raises(ValueError, match="task mismatch"):
    passk.run(config)
  with pytest.raises(ValueError, match="task mismatch"):
    passk.run(smoke_config(checkpoint, tmp_path), task=FakeTask(limit=5))


def test_bad_models_raise(checkpoint, tmp_path):
  # A vocabulary without the task's characters.
  narrow = save_model(tmp_path / "narrow", chars="0123456789")
  with pytest.raises(ValueError, match="lacks"):
    passk.run(smoke_config(narrow, tmp_path), task=FakeTask())
  # No task anywhere.
  untasked = save_model(tmp_path / "untasked", task=None)
  with pytest.raises(ValueError, match="set config.task"):
    passk.run(smoke_config(untasked, tmp_path))
  # A corrupt checkpoint: the parameter files overwritten.
  corrupt = tmp_path / "corrupt"
  shutil.copytree(checkpoint, corrupt)
  for root, _, files in os.walk(corrupt / "1" / "params"):
    for name in files:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"not a checkpoint")
  with pytest.raises(ValueError, match="config.model=.*corrupt"):
    passk.run(smoke_config(str(corrupt), tmp_path), task=FakeTask())
  # A foreign directory, a step folder without qmotto items, a missing path.
  foreign = tmp_path / "foreign"
  foreign.mkdir()
  (foreign / "weights.bin").write_bytes(b"\0" * 16)
  (tmp_path / "steps" / "0" / "something").mkdir(parents=True)
  for path, match in ((foreign, "neither config.json nor orbax"), (tmp_path / "steps", "config.model"),
                      (tmp_path / "missing", "no such file")):
    config = smoke_config(str(path), tmp_path)
    with pytest.raises(ValueError, match=match):
      passk.run(config, task=FakeTask())
    assert not os.path.exists(config.output_dir)


def test_group_sizes_and_distinct_answers():
  assert passk.group_sizes("stratified", 8, (1, 2, 4, 8)) == [8, 2, 4]
  assert passk.group_sizes("lattice", 8, (1, 2, 3, 8)) == [8, 3]
  assert passk.group_sizes("sobol", 8, (1, 2, 4, 8)) == [8]
  codes = np.array([[[0, 0, 1, -1], [2, 2, 2, 2]]])  # [P=1, R=2, n=4], -1: no answer.
  assert passk.distinct_per_group(codes, "iid", 4)[0] == pytest.approx((2 + 1) / 2)
  # Sobol blocks {0,1}, {2,3}: 1, 1 (the -1 is not counted), then 1, 1.
  assert passk.distinct_per_group(codes, "sobol", 2)[0] == pytest.approx(1.0)
  # Lattice strides {0,2}, {1,3}: 2, 1 and 1, 1.
  assert passk.distinct_per_group(codes, "lattice", 2)[0] == pytest.approx(5 / 4)
  hashes = np.array([[[5, 9, 5]]], np.int64)
  np.testing.assert_array_equal(passk.answer_codes(np.array([[[True, True, False]]]), hashes), [[[0, 1, -1]]])


def test_build_summary(tmp_path):
  row = dict(task="t", model="m", style="compact", sampler="iid", k=1, pass_at_k=0.5, ci_low=0.4,
             ci_high=0.6, union_bound=0.5, samples_saved=0.0, saved_low=0.0, saved_high=0.0,
             distinct_per_group=1.0, num_problems=3, group_size=8, replications=2)
  for name in ("a_m", "b_m"):
    result = dict(kind=passk.RESULT_KIND, rows=[row | {"task": name[0]}, row | {"task": name[0], "k": 2}])
    passk.write_json(result, str(tmp_path / f"{name}.json"))
  passk.write_json({"something": "else"}, str(tmp_path / "other.json"))
  (tmp_path / "broken.json").write_text("{")
  rows = passk.build_summary(str(tmp_path))
  assert [(r["task"], r["k"]) for r in rows] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
  assert json.load(open(tmp_path / "summary.json")) == rows
  assert all(set(passk.SUMMARY_FIELDS) <= set(r) for r in rows)


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
  tasks = _real_tasks()
  name = "countdown" if "countdown" in tasks.TASK_NAMES else sorted(tasks.TASK_NAMES)[0]
  task = tasks.get_task(name)
  chars = "".join(sorted(set(task.compact_charset())))
  prompt = max(len(task.compact_prompt(p)) for p in task.problems("test", 2))
  tokenizer = loading.CharTokenizer(chars)
  config = helpers.tiny_config(vocab_size=tokenizer.vocab_size, max_seq_len=prompt + 24)
  model = models.Model(config=config, params=helpers.random_params(config, 0, scale=1.0))
  loading.save_checkpoint(tmp_path / "ckpt", model, 1, metadata={
      "tokenizer": tokenizer.to_dict(), "task": task.to_dict(), "style": "compact", "max_new_tokens": 12})
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
  assert (out / f"{task.name}_ckpt.json").exists() and (out / "summary.json").exists()


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
