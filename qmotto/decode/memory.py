"""Device memory of a `generate` call, planned before anything is allocated.

    plan = plan_memory(config, mesh, num_prompts=8, num_samples=64,
                       prompt_len=1024, max_new_tokens=512)
    print(plan.format())      # per-device bytes: weights, KV cache, logits, ...
    plan.check()              # ValueError with the numbers if it cannot fit

What one device holds during `generate` (the layout of
`qmotto.decode.generate`, sharded as `qmotto.models.partitioning` and
`qmotto.sharding.GroupSharding` lay it out):

  weights         every parameter's block (`partitioning.weight_bytes_per_device`)
  prompt cache    [L, P, KV, Lp, Dh] keys and values of the prompts, once per
                  prompt (cascade attention reads it for the whole group)
  sample cache    [L, P*k, KV, Ns, Dh] keys and values of the generated
                  tokens, Ns = max(N - 1, 1)
  logits          float32 [P*k, V] of a decode step (the prefill projects only
                  each prompt's last position, [P, V], smaller)
  outputs         tokens int32 and logprobs float32 [P, k, N]

P prompts split over "data"; the key/value heads over "model" when M divides
KV; cache tensors are in the compute dtype. What it leaves out: XLA's
temporaries inside one layer (activations of [P*k, 1, F] per decode step,
[P, Lp, F] in the prefill), which `activation_bytes` estimates, and the
runtime's own reserve. A plan is a floor: `check` refuses what cannot fit,
it does not promise that what passes fits.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
from jax.sharding import NamedSharding

from qmotto.models import llama
from qmotto.models import partitioning
from qmotto.utils import numbers

_GIB = 1 << 30


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
  """Per-device bytes of one `generate` call (see the module docstring).

  Attributes:
    mesh_shape: {"data": D, "model": M}.
    weights: parameter bytes per device.
    prompt_cache: bytes of the prompts' KV cache per device (one copy per prompt).
    sample_cache: bytes of the samples' KV cache (their generated tokens) per device.
    logits: bytes of float32 logits per device (a decode step's).
    outputs: bytes of the sampled tokens and logprobs per device.
    activations: an estimate of one layer's largest temporaries per device.
    device_bytes: the device's memory (None: unknown, nothing to check).
  """

  mesh_shape: dict
  weights: int
  prompt_cache: int
  sample_cache: int
  logits: int
  outputs: int
  activations: int
  device_bytes: int | None

  @property
  def total(self) -> int:
    return self.weights + self.prompt_cache + self.sample_cache + self.logits + self.outputs + self.activations

  @property
  def fits(self) -> bool | None:
    """Whether the total is within device_bytes (None when that is unknown)."""
    return None if self.device_bytes is None else self.total <= self.device_bytes

  def format(self) -> str:
    """A small table of the plan in GiB."""
    rows = [("weights", self.weights), ("prompt KV cache", self.prompt_cache), ("sample KV cache", self.sample_cache),
            ("logits", self.logits), ("outputs", self.outputs), ("activations (est.)", self.activations),
            ("total", self.total)]
    mesh = f"data={self.mesh_shape['data']} x model={self.mesh_shape['model']}"
    lines = [f"per-device memory, mesh {mesh}:"] + [f"  {name:<20} {value / _GIB:9.2f} GiB" for name, value in rows]
    if self.device_bytes is not None:
      lines.append(f"  {'device':<20} {self.device_bytes / _GIB:9.2f} GiB ({'fits' if self.fits else 'does NOT fit'})")
    return "\n".join(lines)

  def check(self) -> "MemoryPlan":
    """Raises ValueError, with the numbers, if the plan exceeds the device's memory."""
    if self.fits is False:
      parts = ", ".join(
          f"{name} {getattr(self, name) / _GIB:.2f}"
          for name in ("weights", "prompt_cache", "sample_cache", "logits", "outputs", "activations")
      )
      raise ValueError(
          f"this run needs {self.total / _GIB:.2f} GiB per device ({parts} GiB) on a mesh of "
          f"data={self.mesh_shape['data']} x model={self.mesh_shape['model']}, but a device has "
          f"{self.device_bytes / _GIB:.2f} GiB. Use a larger 'model' axis, param_dtype='bfloat16', "
          "fewer prompts per call or fewer samples."
      )
    return self


def sample_cache_slots(max_new_tokens: int) -> int:
  """Ns, the cache slots of one sample in `generate`: the N - 1 tokens it feeds back (at least one slot)."""
  return max(max_new_tokens - 1, 1)


def device_memory_bytes(device: jax.Device | None = None) -> int | None:
  """The memory a device of this process reports (`memory_stats()["bytes_limit"]`), None where it reports none (CPU)."""
  device = device or jax.local_devices()[0]
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


def _bytes(shape, spec, mesh, dtype) -> int:
  return int(np.prod(NamedSharding(mesh, spec).shard_shape(tuple(shape)))) * np.dtype(dtype).itemsize


def plan_memory(
    config: llama.LlamaConfig,
    mesh,
    *,
    num_prompts: int,
    num_samples: int,
    prompt_len: int,
    max_new_tokens: int,
    device_bytes: int | None = None,
) -> MemoryPlan:
  """Plans the per-device memory of `generate` on a ("data", "model") mesh.

  Args:
    config: the model's config (its param_dtype and compute dtype count).
    mesh: a `jax.sharding.Mesh` (`qmotto.sharding.make_mesh`) or a
      `jax.sharding.AbstractMesh((D, M), ("data", "model"))` for hardware
      that is not attached (planning a TPU pod from a laptop).
    num_prompts: P prompts per call (a multiple of D).
    num_samples: k samples per prompt.
    prompt_len: Lp, the padded prompt length.
    max_new_tokens: N.
    device_bytes: a device's memory; default: what the first local device
      reports, when `mesh` is a real mesh (None on the CPU: no check).

  Returns:
    A MemoryPlan; `.check()` raises if it cannot fit.
  """
  partitioning.check_mesh(mesh, abstract=True)
  partitioning.check_divisible(config, mesh)
  p = numbers.check_int("num_prompts", num_prompts, minimum=1)
  k = numbers.check_int("num_samples", num_samples, minimum=1)
  lp = numbers.check_int("prompt_len", prompt_len, minimum=1)
  n = numbers.check_int("max_new_tokens", max_new_tokens, minimum=1)
  data = int(mesh.shape[partitioning.DATA_AXIS])
  if p % data:
    raise ValueError(f"num_prompts={p} must be a multiple of the mesh's 'data' size {data}.")
  if device_bytes is None and isinstance(mesh, jax.sharding.Mesh):
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    device_bytes = device_memory_bytes(local[0]) if local else None
  elif device_bytes is not None:
    device_bytes = numbers.check_int("device_bytes", device_bytes, minimum=1)

  cache = partitioning.cache_spec(config, mesh)  # [L, rows, KV, S, Dh]
  dtype = config.compute_dtype
  l, kv, dh = config.num_layers, config.num_kv_heads, config.head_dim
  s = sample_cache_slots(n)
  rows = jax.sharding.PartitionSpec(partitioning.DATA_AXIS)
  m = partitioning.model_parallelism(mesh)
  per_row_width = math.ceil(config.intermediate_size / m) + math.ceil(config.num_heads * dh / m)
  return MemoryPlan(
      mesh_shape={"data": data, "model": m},
      weights=partitioning.weight_bytes_per_device(config, mesh),
      prompt_cache=2 * _bytes((l, p, kv, lp, dh), cache, mesh, dtype),
      sample_cache=2 * _bytes((l, p * k, kv, s, dh), cache, mesh, dtype),
      logits=_bytes((p * k, config.vocab_size), rows, mesh, np.float32),
      outputs=_bytes((p, k, n), rows, mesh, np.int32) + _bytes((p, k, n), rows, mesh, np.float32),
      # The widest per-layer temporaries: the prefill's [P, Lp, F/M + H*Dh/M]
      # or a decode step's [P*k, 1, ...], in the compute dtype.
      activations=_bytes((max(p * lp, p * k), per_row_width), rows, mesh, dtype),
      device_bytes=device_bytes,
  )


def suggest_mesh_shape(
    config: llama.LlamaConfig,
    device_count: int,
    *,
    num_prompts: int,
    num_samples: int,
    prompt_len: int,
    max_new_tokens: int,
    device_bytes: int | None,
) -> tuple[int, int]:
  """(data, model) sizes for `device_count` devices: the smallest "model" axis whose plan fits.

  Tensor parallelism costs communication every layer, so the weights are
  split no wider than they must be: M runs over the divisors of the device
  count that divide the model (`partitioning.check_divisible`), smallest
  first, and the first whose `plan_memory` fits is taken (M = 1 when
  device_bytes is None, as on the CPU). Raises, with the numbers of the
  widest split, when none fits.
  """
  count = numbers.check_int("device_count", device_count, minimum=1)
  last = None
  for m in [m for m in range(1, count + 1) if count % m == 0]:
    abstract = jax.sharding.AbstractMesh((count // m, m), partitioning.MESH_AXES)
    try:
      plan = plan_memory(
          config, abstract, num_prompts=math.lcm(num_prompts, count // m), num_samples=num_samples,
          prompt_len=prompt_len, max_new_tokens=max_new_tokens, device_bytes=device_bytes,
      )
    except ValueError:
      continue  # m does not divide the heads, MLP or vocabulary.
    last = plan
    if plan.fits is not False:
      return count // m, m
  if last is None:
    raise ValueError(
        f"no 'model' axis size dividing the {count} devices divides this model's heads "
        f"({config.num_heads}), MLP width ({config.intermediate_size}) and vocabulary ({config.vocab_size})."
    )
  last.check()
  raise AssertionError("unreachable: the widest plan does not fit, so check() raised")


def suggest_mesh(
    config: llama.LlamaConfig,
    *,
    num_prompts: int,
    num_samples: int,
    prompt_len: int,
    max_new_tokens: int,
    devices=None,
    device_bytes: int | None = None,
) -> jax.sharding.Mesh:
  """The ("data", "model") mesh over `devices` (default all) of `suggest_mesh_shape`.

  Args:
    config: the model's config (`qmotto.models.loading.load_config`).
    num_prompts, num_samples, prompt_len, max_new_tokens: the run, as
      `plan_memory` takes them (num_prompts is rounded up to a multiple of
      the "data" size, as the runners pad it).
    devices: default `jax.devices()`.
    device_bytes: a device's memory (default: what the first device reports).
  """
  devices = jax.devices() if devices is None else list(devices)
  if device_bytes is None:
    local = [d for d in devices if d.process_index == jax.process_index()]
    device_bytes = device_memory_bytes(local[0]) if local else None
  data, model = suggest_mesh_shape(
      config, len(devices), num_prompts=num_prompts, num_samples=num_samples, prompt_len=prompt_len,
      max_new_tokens=max_new_tokens, device_bytes=device_bytes,
  )
  return partitioning.make_mesh(data=data, model=model, devices=devices)
