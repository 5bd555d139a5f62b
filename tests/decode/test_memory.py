"""Tests of the memory plan (qmotto.decode.memory): bytes that match the arrays, refusals with numbers."""

import jax
import numpy as np
import pytest
from jax.sharding import AbstractMesh

import qmotto
from qmotto.decode import memory
from qmotto.models import partitioning
from tests.models import helpers

QWEN25_7B = dict(
    vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_layers=28, num_heads=28, num_kv_heads=4,
    head_dim=128, max_seq_len=32768, param_dtype="bfloat16", dtype="bfloat16",
)


def test_plan_counts_the_arrays_generate_makes():
  config = helpers.tiny_config(num_layers=3)
  mesh = qmotto.sharding.make_mesh(devices=jax.devices()[:1])
  plan = memory.plan_memory(config, mesh, num_prompts=2, num_samples=4, prompt_len=5, max_new_tokens=7, device_bytes=10**9)
  model = qmotto.models.init_model(config, jax.random.key(0))
  assert plan.weights == sum(x.nbytes for x in jax.tree.leaves(model.params))
  prompt_cache = qmotto.models.init_cache(config, 2, 5)
  cache = qmotto.models.init_group_cache(config, prompt_cache, np.array([5, 3]), 4, 7 - 1)  # as generate makes it.
  assert plan.sample_cache == cache.samples.k.nbytes + cache.samples.v.nbytes
  assert plan.prompt_cache == cache.prompt.k.nbytes + cache.prompt.v.nbytes
  # One copy of each prompt: 1/k of a prompt cache repeated to the k samples.
  repeated = memory.plan_memory(config, mesh, num_prompts=2 * 4, num_samples=1, prompt_len=5, max_new_tokens=7)
  assert plan.prompt_cache * 4 == repeated.prompt_cache
  assert plan.logits == 2 * 4 * config.vocab_size * 4 and plan.outputs == 2 * (2 * 4 * 7 * 4)
  assert plan.fits and plan.check() is plan
  assert "per-device memory, mesh data=1 x model=1" in plan.format() and "fits" in plan.format()


def test_a_model_axis_divides_weights_and_cache():
  whole = memory.plan_memory(qmotto.LlamaConfig(**QWEN25_7B), AbstractMesh((1, 1), ("data", "model")),
                             num_prompts=8, num_samples=64, prompt_len=1024, max_new_tokens=1024)
  split = memory.plan_memory(qmotto.LlamaConfig(**QWEN25_7B), AbstractMesh((2, 4), ("data", "model")),
                             num_prompts=8, num_samples=64, prompt_len=1024, max_new_tokens=1024)
  assert whole.device_bytes is None and whole.fits is None  # an abstract mesh reports no memory.
  # Qwen2.5-7B: 7.6e9 parameters, 15.2 GB in bf16; 4 ways plus the replicated norms.
  assert abs(whole.weights - 2 * 7_615_487_488) < 1e6
  assert whole.weights / 4 <= split.weights < 1.01 * whole.weights / 4
  # KV = 4 heads split 4 ways and the rows 2 ways: 1/8 of the cache.
  assert split.sample_cache == whole.sample_cache // 8


def test_a_run_that_cannot_fit_is_refused_with_the_numbers():
  plan = memory.plan_memory(qmotto.LlamaConfig(**QWEN25_7B), AbstractMesh((1, 1), ("data", "model")),
                            num_prompts=16, num_samples=64, prompt_len=2048, max_new_tokens=2048,
                            device_bytes=80 * 10**9)
  assert plan.fits is False
  with pytest.raises(ValueError, match=r"this run needs \d+\.\d\d GiB per device \(weights 14\.18, .*sample_cache .* GiB\) on a mesh of data=1 x model=1, but a device has 74\.51 GiB"):
    plan.check()


def test_bad_arguments():
  config = helpers.tiny_config()
  mesh = AbstractMesh((2, 1), ("data", "model"))
  with pytest.raises(ValueError, match=r"num_prompts=3 must be a multiple of the mesh's 'data' size 2"):
    memory.plan_memory(config, mesh, num_prompts=3, num_samples=2, prompt_len=4, max_new_tokens=4)
  with pytest.raises(ValueError, match=r"num_samples must be an int >= 1"):
    memory.plan_memory(config, mesh, num_prompts=2, num_samples=0, prompt_len=4, max_new_tokens=4)
  with pytest.raises(ValueError, match=r"does not divide vocab_size=50"):
    memory.plan_memory(config, AbstractMesh((1, 4), ("data", "model")), num_prompts=2, num_samples=2,
                       prompt_len=4, max_new_tokens=4)
  with pytest.raises(ValueError, match=r"mesh must be a jax.sharding.Mesh or jax.sharding.AbstractMesh"):
    memory.plan_memory(config, (2, 4), num_prompts=2, num_samples=2, prompt_len=4, max_new_tokens=4)


def test_generate_refuses_up_front(monkeypatch):
  # A device that reports 1 KiB: generate refuses before compiling anything.
  monkeypatch.setattr(memory, "device_memory_bytes", lambda device=None: 1024)
  model = helpers.random_model(0)
  with pytest.raises(ValueError, match=r"but a device has 0\.00 GiB"):
    qmotto.generate(jax.random.key(0), model, np.ones((1, 3), np.int32), np.array([3]), num_samples=2,
                    max_new_tokens=2)
  with pytest.raises(ValueError, match=r"but a device has 0\.00 GiB"):
    qmotto.sharding.GroupSharding(partitioning.make_mesh(devices=jax.devices()[:1])).generate(
        jax.random.key(0), model, np.ones((1, 3), np.int32), np.array([3]), num_samples=2, max_new_tokens=2)


def test_suggest_mesh_splits_no_wider_than_it_must():
  config = qmotto.LlamaConfig(**QWEN25_7B)
  run = dict(num_prompts=8, num_samples=64, prompt_len=1024, max_new_tokens=1024)
  # v5e-8 (16 GB chips): 14 GiB of bf16 weights and the cache do not fit
  # one chip; 2 ways (7 GiB of weights, 1/8 of the cache per chip) do.
  assert memory.suggest_mesh_shape(config, 8, device_bytes=16 * 2**30, **run) == (4, 2)
  # The cache per chip is 1/8 either way (rows over "data", KV heads over
  # "model"); with 2.5x the new tokens (8.9 GiB of sample cache) the 7 GiB
  # of weights no longer fit beside it.
  longer = run | dict(max_new_tokens=2600)
  assert memory.suggest_mesh_shape(config, 8, device_bytes=16 * 2**30, **longer) == (2, 4)
  assert memory.suggest_mesh_shape(config, 8, device_bytes=80 * 10**9, **run) == (8, 1)  # one GPU each.
  assert memory.suggest_mesh_shape(config, 8, device_bytes=None, **run) == (8, 1)  # unknown memory: no split.
  with pytest.raises(ValueError, match=r"this run needs .* on a mesh of data=1 x model=4, but a device has 1\.00 GiB"):
    memory.suggest_mesh_shape(config, 4, device_bytes=2**30, **run)
  mesh = memory.suggest_mesh(helpers.tiny_config(), devices=jax.devices()[:1], **run | dict(prompt_len=4, max_new_tokens=4))
  assert mesh.axis_names == ("data", "model") and mesh.devices.shape == (1, 1)
