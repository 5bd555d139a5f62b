"""Orbax checkpoints of qmotto models: save/restore equality, resume from the
latest step, extra state, and errors on foreign or corrupt checkpoints."""

import glob
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from qmotto.models import LlamaConfig
from qmotto.models import forward_logits
from qmotto.models import init_model
from qmotto.models.loading import CharTokenizer
from qmotto.models.loading import checkpoint_steps
from qmotto.models.loading import latest_checkpoint_step
from qmotto.models.loading import load_model
from qmotto.models.loading import restore_checkpoint
from qmotto.models.loading import save_checkpoint

CONFIG = LlamaConfig(
    vocab_size=50, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
    rope_theta=500.0, tie_embeddings=True, qkv_bias=True, max_seq_len=64,
)


def _model(seed=0, config=CONFIG):
  return init_model(config, jax.random.key(seed))


def _assert_same(a, b):
  assert a.config == b.config
  assert jax.tree.structure(a.params) == jax.tree.structure(b.params)
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    assert x.dtype == y.dtype
    np.testing.assert_array_equal(x, y)


def test_save_restore_roundtrip(tmp_path):
  model = _model()
  step_dir = save_checkpoint(tmp_path / "ckpt", model, step=7)
  assert step_dir == os.path.join(str(tmp_path / "ckpt"), "7")
  with open(os.path.join(step_dir, "config", "metadata")) as f:  # the config, as JSON beside the params
    meta = json.load(f)
  assert meta["format"] == "qmotto.models.Model" and meta["step"] == 7
  assert meta["config"]["vocab_size"] == 50 and meta["config"]["qkv_bias"] is True
  restored = restore_checkpoint(tmp_path / "ckpt")
  assert restored.step == 7 and restored.extra is None
  _assert_same(restored.model, model)
  tokens = np.array([[1, 2, 3, 4]])
  np.testing.assert_array_equal(forward_logits(restored.model, tokens), forward_logits(model, tokens))


def test_untied_float32_bf16_config(tmp_path):
  config = LlamaConfig(
      vocab_size=40, hidden_size=32, intermediate_size=48, num_layers=1, num_heads=2, num_kv_heads=2,
      dtype="bfloat16",
  )
  model = _model(3, config)
  save_checkpoint(tmp_path / "c", model, step=0)
  restored = restore_checkpoint(tmp_path / "c")
  _assert_same(restored.model, model)
  assert restored.model.config.dtype == "bfloat16" and "lm_head" in restored.model.params


def test_resume_latest_and_max_to_keep(tmp_path):
  path = tmp_path / "ckpt"
  models = {s: _model(s) for s in (1, 5, 10)}
  for step, model in models.items():
    save_checkpoint(path, model, step=step, max_to_keep=2)
  assert checkpoint_steps(path) == [5, 10]
  assert latest_checkpoint_step(path) == 10
  latest = restore_checkpoint(path)
  assert latest.step == 10
  _assert_same(latest.model, models[10])
  _assert_same(restore_checkpoint(path, step=5).model, models[5])
  with pytest.raises(ValueError, match=r"no checkpoint step 1; saved steps: \[5, 10\]"):
    restore_checkpoint(path, step=1)
  with pytest.raises(ValueError, match="step 10 already exists"):
    save_checkpoint(path, models[1], step=10)
  with pytest.raises(ValueError, match="step 3 is older than the latest saved step 10"):
    save_checkpoint(path, models[1], step=3)
  save_checkpoint(path, models[1], step=11, max_to_keep=2)
  assert checkpoint_steps(path) == [10, 11]
  assert checkpoint_steps(tmp_path / "nothing") == [] and latest_checkpoint_step(tmp_path / "nothing") is None


def test_extra_state(tmp_path):
  model = _model()
  opt = optax.adam(1e-3)
  state = opt.init(model.params)
  save_checkpoint(tmp_path / "c", model, step=2, extra={"opt": state, "rng": np.arange(3)})
  target = {"opt": state, "rng": np.zeros(3, np.int64)}
  restored = restore_checkpoint(tmp_path / "c", extra_target=target)
  assert jax.tree.structure(restored.extra) == jax.tree.structure(target)
  np.testing.assert_array_equal(restored.extra["rng"], np.arange(3))
  np.testing.assert_array_equal(
      restored.extra["opt"][0].mu["embed"]["embedding"], state[0].mu["embed"]["embedding"]
  )
  raw = restore_checkpoint(tmp_path / "c").extra  # without a target: plain containers
  np.testing.assert_array_equal(raw["rng"], np.arange(3))


def test_load_model_restores_orbax(tmp_path):
  model = _model()
  save_checkpoint(tmp_path / "c", model, step=1)
  loaded, tokenizer = load_model(tmp_path / "c")
  assert tokenizer is None
  _assert_same(loaded, model)
  loaded, _ = load_model(tmp_path / "c", max_seq_len=32)
  assert loaded.config.max_seq_len == 32


# ----------------------------------------------------------------------------
# Errors.


def test_missing_and_empty(tmp_path):
  with pytest.raises(ValueError, match="checkpoint directory not found"):
    restore_checkpoint(tmp_path / "nope")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no checkpoint steps found"):
    restore_checkpoint(tmp_path / "empty")


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="model must be a qmotto.models.Model"):
    save_checkpoint(tmp_path / "c", {"params": 1}, step=0)
  with pytest.raises(ValueError, match="step must be an int >= 0"):
    save_checkpoint(tmp_path / "c", _model(), step=-1)
  (tmp_path / "file").write_text("x")
  with pytest.raises(ValueError, match="exists and is not a directory"):
    save_checkpoint(tmp_path / "file", _model(), step=0)


def _foreign(path, items):
  with ocp.CheckpointManager(str(path), options=ocp.CheckpointManagerOptions(create=True)) as mngr:
    mngr.save(0, args=ocp.args.Composite(**items))
    mngr.wait_until_finished()


def test_foreign_checkpoint_without_config(tmp_path):
  _foreign(tmp_path / "f", {"state": ocp.args.StandardSave({"w": jnp.ones(3)})})
  with pytest.raises(ValueError, match=r"not a qmotto model checkpoint \(no 'config' item\)"):
    restore_checkpoint(tmp_path / "f")


def test_foreign_checkpoint_other_config(tmp_path):
  _foreign(
      tmp_path / "f",
      {"params": ocp.args.StandardSave({"w": jnp.ones(3)}), "config": ocp.args.JsonSave({"lr": 0.1})},
  )
  with pytest.raises(ValueError, match=r"not a qmotto model checkpoint \(config format"):
    restore_checkpoint(tmp_path / "f")


def test_params_not_matching_config(tmp_path):
  model = _model()
  params = jax.tree.map(lambda x: x, model.params)
  params["layers"] = {**params["layers"], "mlp": {k: v for k, v in params["layers"]["mlp"].items() if k != "up"}}
  bad = model.replace(params=params)
  save_checkpoint(tmp_path / "c", bad, step=0)
  with pytest.raises(ValueError, match=r"parameters do not match the saved config: missing \['layers'\]\['mlp'\]\['up'\]"):
    restore_checkpoint(tmp_path / "c")


def test_corrupt_config(tmp_path):
  step_dir = save_checkpoint(tmp_path / "c", _model(), step=0)
  for f in glob.glob(os.path.join(step_dir, "config", "*")):
    if os.path.isfile(f) and not f.endswith("commit_success.txt"):
      with open(f, "w") as fh:
        fh.write("{broken")
  with pytest.raises(ValueError, match="config item is unreadable or corrupt"):
    restore_checkpoint(tmp_path / "c")


def test_corrupt_params(tmp_path):
  step_dir = save_checkpoint(tmp_path / "c", _model(), step=0)
  data = [f for f in glob.glob(os.path.join(step_dir, "params", "**", "*"), recursive=True) if os.path.isfile(f)]
  assert data
  for f in data:
    if os.path.basename(f) not in ("commit_success.txt",):
      with open(f, "r+b") as fh:
        fh.truncate(3)
  with pytest.raises(ValueError, match="checkpoint is incomplete or corrupt"):
    restore_checkpoint(tmp_path / "c")


def test_metadata_and_char_tokenizer_roundtrip(tmp_path):
  tokenizer = CharTokenizer("0123456789+-=")
  model = _model()
  metadata = {"tokenizer": tokenizer.to_dict(), "task": {"name": "countdown", "options": {"min_numbers": 3}}}
  save_checkpoint(tmp_path / "c", model, step=1, metadata=metadata)
  restored = restore_checkpoint(tmp_path / "c")
  assert restored.metadata == metadata
  loaded, loaded_tokenizer = load_model(tmp_path / "c")
  _assert_same(loaded, model)
  assert loaded_tokenizer == tokenizer
  # Without metadata: no tokenizer, metadata None.
  save_checkpoint(tmp_path / "d", model, step=1)
  assert restore_checkpoint(tmp_path / "d").metadata is None
  assert load_model(tmp_path / "d")[1] is None


def test_metadata_errors(tmp_path):
  with pytest.raises(ValueError, match="metadata must be a dict"):
    save_checkpoint(tmp_path / "c", _model(), step=1, metadata=[1])
  with pytest.raises(ValueError, match="JSON-serializable"):
    save_checkpoint(tmp_path / "c", _model(), step=1, metadata={"x": object()})
  save_checkpoint(tmp_path / "e", _model(), step=1, metadata={"tokenizer": {"kind": "bpe"}})
  with pytest.raises(ValueError, match="metadata 'tokenizer' is not usable"):
    load_model(tmp_path / "e")


def _largest_file(directory):
  files = [f for f in glob.glob(os.path.join(directory, "**", "*"), recursive=True) if os.path.isfile(f)]
  return max(files, key=os.path.getsize)


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_checkpoint_gives_one_clear_line(tmp_path, damage):
  path = str(tmp_path / "ckpt")
  save_checkpoint(path, _model(), 3)
  largest = _largest_file(os.path.join(path, "3", "params"))
  if damage == "truncate":
    with open(largest, "r+b") as f:
      f.truncate(os.path.getsize(largest) // 2)
  else:
    os.remove(largest)
  with pytest.raises(ValueError) as info:
    load_model(path)
  message = str(info.value)
  assert "checkpoint is incomplete or corrupt" in message and os.path.join(path, "3") in message
  assert "\n" not in message and len(message) < 400  # one line, not TensorStore's pages.
  # No chained orbax/asyncio traceback under it.
  assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_as_in_hf_checkpoints(tmp_path, bad):
  model = _model()
  params = jax.tree.map(np.array, model.params)
  params["layers"]["mlp"]["up"]["kernel"][1, 3, 5] = bad
  path = str(tmp_path / "ckpt")
  save_checkpoint(path, model.replace(params=params), 0)
  with pytest.raises(ValueError, match=r"tensor \"params\['layers'\]\['mlp'\]\['up'\]\['kernel'\]\" holds NaN or infinite"):
    load_model(path)
  with pytest.raises(ValueError, match="holds NaN or infinite"):
    restore_checkpoint(path)


def test_an_absurd_saved_config_is_refused_before_reading_weights(tmp_path):
  path = str(tmp_path / "ckpt")
  save_checkpoint(path, _model(), 0)
  config_file = os.path.join(path, "0", "config", "metadata")
  with open(config_file) as f:
    saved = json.load(f)
  saved["config"]["num_layers"] = 1_000_000
  with open(config_file, "w") as f:
    json.dump(saved, f)
  with pytest.raises(ValueError, match=r"saved config is invalid: LlamaConfig.num_layers must be an int in \[1, 4096\]"):
    load_model(path)


def test_a_damaged_checkpoint_prints_no_pages_of_abandoned_reads(tmp_path):
  # Before: every abandoned shard read printed "Exception ignored in
  # <coroutine ...>" with TensorStore's spec (tens of lines each) to stderr.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  path = str(tmp_path / "ckpt")
  save_checkpoint(path, _model(), 0)
  for name in glob.glob(os.path.join(path, "0", "params", "**", "d", "*"), recursive=True):
    with open(name, "r+b") as f:
      f.truncate(10)
  script = f"from qmotto.models.loading import load_model\nload_model({path!r})\n"
  done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert done.returncode == 1, done.stderr
  assert "checkpoint is incomplete or corrupt" in done.stderr
  assert "Exception ignored" not in done.stderr
  # What may remain, a varying amount: TensorStore's reads that finish after
  # orbax closed its event loop print "RuntimeError: Event loop is closed"
  # from their own threads (README says so); nothing else.
  others = [line for line in done.stderr.splitlines()
            if not line.startswith("I") and "Event loop is closed" not in line]
  assert not any("TensorStore({" in line for line in others)
