"""Tensor parallelism (qmotto.models.partitioning) and parameter dtypes.

The multi-device checks run in one subprocess with 8 forced CPU devices (the
device count is fixed when JAX starts): logits of a 2x4 and a 1x8 mesh
against the unsharded model, HF weights loaded sharded as they are read, the
per-device weight bytes from the compiled program's memory analysis, and the
per-slot exactness of six samplers on a sharded model.
"""

import json

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from qmotto import models
from qmotto.models import partitioning
from qmotto.models.loading import load_hf_directory
from qmotto.models.loading import load_model
from qmotto.sampling import transforms
from tests import devices

from . import helpers

_SCRIPT = r'''
import json, os, sys, tempfile, time
start = time.time()
import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from safetensors.numpy import save_file

import qmotto
from qmotto import models
from qmotto.models import partitioning
from qmotto.models.loading import load_hf_directory
from tests.models import helpers
from tests.sampling.test_exactness import chi_square_pvalue, sequence_counts

assert jax.device_count() == 8
report = {}
rel = lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())

# H = 8, KV = 4: split over model=4 (2x4), replicated over model=8 (1x8).
config = helpers.tiny_config(vocab_size=64, hidden_size=64, intermediate_size=128, num_heads=8, num_kv_heads=4)
model = models.Model(config, helpers.random_params(config, 0))
tokens = np.random.default_rng(0).integers(0, 64, (4, 12))
reference = np.asarray(models.forward_logits(model, tokens))
for data, m in [(2, 4), (1, 8)]:
  mesh = qmotto.sharding.make_mesh(data=data, model=m)
  sharded = partitioning.shard_model(model, mesh)
  name = f"{data}x{m}"
  q = sharded.params["layers"]["attn"]["q"]["kernel"]
  k = sharded.params["layers"]["attn"]["k"]["kernel"]
  report[name] = dict(
      logits_rel=rel(models.forward_logits(sharded, tokens), reference),
      q_shard=list(q.addressable_shards[0].data.shape),
      k_shard=list(k.addressable_shards[0].data.shape),
      embed_shard=list(sharded.params["embed"]["embedding"].addressable_shards[0].data.shape),
  )
  # Per-device bytes of the weights, from the compiled program: the
  # arguments of a forward pass are the parameters and the tokens.
  def args_bytes(mdl):
    compiled = jax.jit(lambda mdl, t: mdl.apply(t)[0]).lower(mdl, jnp.asarray(tokens, jnp.int32)).compile()
    return compiled.memory_analysis().argument_size_in_bytes - tokens.size * 4
  report[name]["weight_bytes"] = int(args_bytes(sharded))
  report[name]["weight_bytes_planned"] = int(partitioning.weight_bytes_per_device(config, mesh))
  report["total_weight_bytes"] = int(args_bytes(model))

  # Generate on the sharded model through both axes: the same model
  # unsharded gives the same tokens for the token-mode sampler except where
  # a uniform falls within rounding of a bin edge.
  prompts = np.random.default_rng(1).integers(0, 64, (4, 5)).astype(np.int32)
  lengths = np.array([5, 3, 4, 2], np.int32)
  groups = qmotto.sharding.GroupSharding(mesh)
  kw = dict(num_samples=4, max_new_tokens=6, sampling="sobol")
  out = groups.generate(jax.random.key(3), sharded, prompts, lengths, **kw)
  plain = qmotto.generate(jax.random.key(3), model, prompts, lengths, **kw)
  report[name]["generate_token_agreement"] = float((np.asarray(out.tokens) == np.asarray(plain.tokens)).mean())
  report[name]["generate_logprob_rel"] = rel(out.logprobs, plain.logprobs)
  report[name]["tokens_spec"] = str(out.tokens.sharding.spec)

# HF weights loaded sharded as they are read (bf16 on disk and on device).
tmp = tempfile.mkdtemp()
tensors = helpers.random_hf_tensors(vocab=64, hidden=64, ffn=128, layers=2, heads=8, kv_heads=4)
import ml_dtypes
save_file({n: t.astype(ml_dtypes.bfloat16) for n, t in tensors.items()}, os.path.join(tmp, "model.safetensors"))
json.dump({"architectures": ["LlamaForCausalLM"], "vocab_size": 64, "hidden_size": 64, "intermediate_size": 128,
           "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 4, "max_position_embeddings": 64},
          open(os.path.join(tmp, "config.json"), "w"))
mesh = qmotto.sharding.make_mesh(data=2, model=4)
loaded, _ = load_hf_directory(tmp, mesh=mesh, param_dtype="bfloat16")
whole, _ = load_hf_directory(tmp, param_dtype="bfloat16")
down = loaded.params["layers"]["mlp"]["down"]["kernel"]
report["hf"] = dict(
    dtype=str(down.dtype),
    spec=str(down.sharding.spec),
    shard=list(down.addressable_shards[0].data.shape),
    equal=bool(all(np.array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
                   for a, b in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(whole.params)))),
    logits_rel=rel(models.forward_logits(loaded, tokens), models.forward_logits(whole, tokens)),
    mesh_kept=loaded.mesh == mesh,
)

# An orbax checkpoint restores sharded too, each device reading its block.
from qmotto.models import loading
ckpt = os.path.join(tmp, "orbax")
loading.save_checkpoint(ckpt, whole, 0)
restored = loading.restore_checkpoint(ckpt, mesh=mesh).model
up = restored.params["layers"]["mlp"]["up"]["kernel"]
report["orbax"] = dict(
    spec=str(up.sharding.spec), shard=list(up.addressable_shards[0].data.shape), dtype=str(up.dtype),
    equal=bool(all(np.array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
                   for a, b in zip(jax.tree.leaves(restored.params), jax.tree.leaves(whole.params)))),
)
report["seconds_before_exactness"] = time.time() - start
# Exactness per slot on a sharded model: one prompt as G groups of 8, two
# new tokens over a vocabulary of 8, against the model's exact probabilities.
small = helpers.tiny_config(vocab_size=8, hidden_size=16, intermediate_size=32, num_heads=4, num_kv_heads=2)
small_model = models.Model(small, helpers.random_params(small, 5, scale=1.0))
prompt = np.array([[3, 1, 4]], np.int32)
first = np.asarray(jax.nn.softmax(models.forward_logits(small_model, prompt)[0, -1]), np.float64)
both = np.concatenate([np.repeat(prompt, 8, 0), np.arange(8)[:, None]], 1)
second = np.asarray(jax.nn.softmax(models.forward_logits(small_model, both)[:, -1]), np.float64)  # [t0, t1]
exact = (first[:, None] * second).T.reshape(-1)  # id = t0 + 8 * t1, as sequence_counts.
exact = exact / exact.sum()
sharded_small = partitioning.shard_model(small_model, mesh)
num_groups = 1600
pvalues = {}
for sampler in SHARDED_EXACTNESS_SAMPLERS:
  out = qmotto.sharding.GroupSharding(mesh, group_batch=None).generate(
      jax.random.key(7), sharded_small, np.repeat(prompt, num_groups, 0), np.full(num_groups, 3, np.int32),
      num_samples=8, max_new_tokens=2, sampling=sampler, group_ids=np.arange(num_groups),
  )
  tokens_out = np.asarray(out.tokens)  # [G, 8, 2]
  pvalues[sampler] = [chi_square_pvalue(sequence_counts(tokens_out[:, slot], 8), exact) for slot in range(8)]
report["pvalues"] = pvalues
report["seconds"] = time.time() - start
print("REPORT" + json.dumps(report))
'''


# Per-slot exactness on the sharded model: the code-mode samplers and one
# token-mode one (every sampler's exactness is tested unsharded in
# tests/sampling; sharding is the same for all of them, and each costs a compile).
SHARDED_EXACTNESS_SAMPLERS = ("antithetic", "iid", "lattice", "sobol", "stratified", "stratified_token")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  script = f"SHARDED_EXACTNESS_SAMPLERS = {SHARDED_EXACTNESS_SAMPLERS!r}\n" + _SCRIPT
  return devices.run_script_once(script, tmp_path_factory.getbasetemp().parent, device_count=8, timeout=900)


@pytest.mark.parametrize("mesh", ["2x4", "1x8"])
def test_sharded_logits_equal_unsharded(report, mesh):
  r = report[mesh]
  assert r["logits_rel"] < 1e-5, r
  m = int(mesh[-1])
  assert r["q_shard"] == [2, 64, 64 // m]  # [L, D, H*Dh / M]: whole heads per device.
  assert r["embed_shard"] == [64 // m, 64]  # vocabulary rows split.
  # KV = 4 key/value heads: split over model=4, replicated over model=8.
  assert r["k_shard"] == ([2, 64, 8] if m == 4 else [2, 64, 32])


@pytest.mark.parametrize("mesh", ["2x4", "1x8"])
def test_weight_bytes_per_device_are_about_one_mth(report, mesh):
  r, total = report[mesh], report["total_weight_bytes"]
  m = int(mesh[-1])
  # The norms (and at M = 8 the replicated k/v) are whole on every device:
  # a little above 1/M, and exactly what the plan computes.
  assert r["weight_bytes"] == r["weight_bytes_planned"], r
  if m == 4:
    assert total / m <= r["weight_bytes"] < 1.25 * total / m, (r, total)
  else:  # KV = 4 heads do not split 8 ways: k and v (40% of this tiny model) are whole on every device.
    assert total / m <= r["weight_bytes"] < 0.25 * total, (r, total)


@pytest.mark.parametrize("mesh", ["2x4", "1x8"])
def test_generate_runs_on_both_axes(report, mesh):
  r = report[mesh]
  assert r["tokens_spec"] == ("P('data',)" if mesh == "2x4" else "P()"), r  # a "data" axis of 1 is no split.
  assert r["generate_logprob_rel"] < 1e-4 and r["generate_token_agreement"] > 0.95, r


def test_hf_weights_load_sharded_in_bf16(report):
  r = report["hf"]
  assert r["dtype"] == "bfloat16" and r["spec"] == "P(None, 'model', None)", r
  assert r["shard"] == [2, 32, 64] and r["equal"] and r["mesh_kept"], r
  assert r["logits_rel"] < 1e-5, r


def test_orbax_checkpoint_restores_sharded(report):
  r = report["orbax"]
  assert r["spec"] == "P(None, None, 'model')" and r["shard"] == [2, 64, 32], r
  assert r["dtype"] == "bfloat16" and r["equal"], r


@pytest.mark.parametrize("sampler", SHARDED_EXACTNESS_SAMPLERS)
def test_samplers_exact_per_slot_on_a_sharded_model(report, sampler):
  # Threshold as tests/sampling/test_exactness.py: 1e-9 per p-value, 40 here.
  pvalues = report["pvalues"][sampler]
  assert len(pvalues) == 8 and min(pvalues) > 1e-9, pvalues


# --- In process: the layout rules, dtypes and errors. -----------------------------


def _mesh(data, model):
  devices = np.array(jax.devices()[:1] * (data * model)).reshape(data, model)
  return jax.sharding.Mesh(devices, partitioning.MESH_AXES)


def test_param_specs_follow_the_logical_rules():
  cfg = helpers.tiny_config(num_heads=4, num_kv_heads=2, vocab_size=64, qkv_bias=True)
  specs = partitioning.param_specs(cfg, _mesh(1, 2))
  assert specs["embed"]["embedding"] == P("model", None)
  assert specs["lm_head"]["kernel"] == P(None, "model")
  assert specs["layers"]["attn"]["q"]["kernel"] == P(None, None, "model")
  assert specs["layers"]["attn"]["q"]["bias"] == P(None, "model")
  assert specs["layers"]["attn"]["k"]["kernel"] == P(None, None, "model")  # KV = 2 splits over 2.
  assert specs["layers"]["attn"]["o"]["kernel"] == P(None, "model", None)
  assert specs["layers"]["mlp"]["down"]["kernel"] == P(None, "model", None)
  assert specs["layers"]["attn_norm"]["scale"] == P(None, None)
  specs4 = partitioning.param_specs(cfg, _mesh(1, 4))
  assert specs4["layers"]["attn"]["k"]["kernel"] == P(None, None, None)  # KV = 2 replicated over 4.
  assert partitioning.cache_spec(cfg, _mesh(1, 4)) == P(None, "data", None, None, None)
  assert partitioning.cache_spec(cfg, _mesh(1, 2)) == P(None, "data", "model", None, None)


def test_a_model_axis_that_does_not_divide_is_refused():
  cfg = helpers.tiny_config(num_heads=4, num_kv_heads=2)  # vocab 50, F 64.
  with pytest.raises(ValueError, match=r"'model' axis of size 4 does not divide vocab_size=50.*Model sizes that divide this model: \[1, 2\]"):
    partitioning.param_specs(cfg, _mesh(1, 4))
  with pytest.raises(ValueError, match=r"does not divide num_heads=4"):
    partitioning.param_specs(helpers.tiny_config(vocab_size=48, intermediate_size=48), _mesh(1, 3))
  with pytest.raises(ValueError, match=r"mesh must have the axes \('data', 'model'\)"):
    partitioning.check_mesh(jax.sharding.Mesh(np.array(jax.devices()[:1]), ("x",)))


def _write_hf(tmp_path, tensors, dtype=np.float32):
  from safetensors.numpy import save_file

  tmp_path.mkdir(exist_ok=True)
  save_file({n: t.astype(dtype) for n, t in tensors.items()}, str(tmp_path / "model.safetensors"))
  (tmp_path / "config.json").write_text(json.dumps({
      "architectures": ["LlamaForCausalLM"], "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
  }))
  return tmp_path


def _tensors():
  return helpers.random_hf_tensors(vocab=64, hidden=32, ffn=64, layers=2, heads=4, kv_heads=2)


@pytest.mark.parametrize("param_dtype", ["bfloat16", "float16"])
def test_half_precision_weights_logits_within_tolerance(tmp_path, param_dtype):
  """bf16 / f16 weights, float32 compute: logits within 2% (bf16: 8 bits of
  mantissa, ~0.4% per weight) resp. 0.3% (f16: 11 bits) of the float32
  model's, relative to the largest logit; the logits stay float32."""
  path = _write_hf(tmp_path / "m", _tensors())
  full, _ = load_hf_directory(path)
  half, _ = load_hf_directory(path, param_dtype=param_dtype)
  assert all(x.dtype == jnp.dtype(param_dtype) for x in jax.tree.leaves(half.params))
  tokens = np.random.default_rng(0).integers(0, 64, (3, 10))
  got, expected = models.forward_logits(half, tokens), np.asarray(models.forward_logits(full, tokens))
  assert got.dtype == jnp.float32
  rel = float(np.abs(np.asarray(got) - expected).max() / np.abs(expected).max())
  assert rel < (2e-2 if param_dtype == "bfloat16" else 3e-3), rel
  # And bf16 compute on bf16 weights: still float32 logits.
  both, _ = load_hf_directory(path, param_dtype=param_dtype, dtype=param_dtype)
  assert models.forward_logits(both, tokens).dtype == jnp.float32


def test_bf16_checkpoint_loads_as_bf16_without_a_float32_copy(tmp_path):
  """Host memory while loading a bf16 checkpoint as bf16 (tracemalloc sees NumPy's buffers).

  The largest tensors are the 8 MiB embedding and lm_head; the head is held
  twice while it is transposed to [in, out] (measured: 2.3x 8 MiB at the
  peak). A float32 detour would add 16 MiB for the head alone (>= 4.3x).
  """
  import tracemalloc

  tensors = helpers.random_hf_tensors(vocab=8192, hidden=512, ffn=64, layers=1, heads=4, kv_heads=2)
  path = _write_hf(tmp_path / "m", tensors, dtype=ml_dtypes.bfloat16)
  config = json.loads((path / "config.json").read_text())
  config.update(vocab_size=8192, hidden_size=512, num_hidden_layers=1)
  (path / "config.json").write_text(json.dumps(config))
  embedding_bytes = 8192 * 512 * 2
  tracemalloc.start()
  try:
    model, _ = load_hf_directory(path, param_dtype="bfloat16")
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(model.params))
  assert peak < 3.0 * embedding_bytes, peak / embedding_bytes


def test_float32_weights_beyond_float16_range_are_refused(tmp_path):
  tensors = _tensors()
  tensors["model.layers.1.mlp.up_proj.weight"][0, 0] = 1e6
  path = _write_hf(tmp_path / "m", tensors)
  with pytest.raises(ValueError, match=r"'model.layers.1.mlp.up_proj.weight' holds values beyond the range of param_dtype=float16 \(stored as float32, largest \|x\| = 1e\+06\)"):
    load_hf_directory(path, param_dtype="float16")
  load_hf_directory(path, param_dtype="bfloat16")  # bf16 has float32's range.


def test_bad_param_dtype_and_mesh_are_refused(tmp_path):
  path = _write_hf(tmp_path / "m", _tensors())
  with pytest.raises(ValueError, match=r"load_model: param_dtype must be one of \('float32', 'bfloat16', 'float16'\), got 'int8'"):
    load_model(path, param_dtype="int8")
  with pytest.raises(ValueError, match=r"load_model: mesh must be a jax.sharding.Mesh"):
    load_model(path, mesh="2x4")
  with pytest.raises(ValueError, match=r"param_dtype must be one of"):
    helpers.tiny_config(param_dtype="float64")


def test_sampling_runs_in_float32_on_the_final_logits():
  # The model's logits are float32 whatever the weights and compute dtypes,
  # and the sampler's weights are float32 even from bf16 logits.
  cfg = helpers.tiny_config(param_dtype="bfloat16", dtype="bfloat16")
  model = models.init_model(cfg, jax.random.key(0))
  assert models.forward_logits(model, np.ones((1, 3), np.int32)).dtype == jnp.float32
  logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 50)), jnp.bfloat16)
  weights = transforms.token_weights(logits, transforms.LogitTransform())
  assert weights.dtype == jnp.float32
  np.testing.assert_array_equal(weights, transforms.token_weights(logits.astype(jnp.float32), transforms.LogitTransform()))
