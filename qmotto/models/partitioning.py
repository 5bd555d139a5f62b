"""How a model's weights and KV cache lie on a ("data", "model") device mesh.

Megatron-style tensor parallelism, written as sharding annotations that XLA's
SPMD partitioner turns into per-device programs (as MaxText does): every
parameter dimension carries a logical name, and `LOGICAL_RULES` maps names to
mesh axes.

  logical name   dimension                          mesh axis
  "vocab"        V of the embedding and the head    "model"
  "heads"        H * Dh of q and of o's input       "model"
  "kv_heads"     KV * Dh of k, v and the KV cache   "model" if KV is a multiple of M, else replicated
  "mlp"          F of gate, up and down             "model"
  everything else (D, layers, norms)                replicated

A block of H * Dh columns split over M devices holds whole heads (H / M of
them); when M does not divide KV, each device keeps every key/value head
(GQA heads replicated), the usual fallback (MaxText, vLLM). Groups (the
batch of prompts and samples) lie over "data".

    mesh = make_mesh(data=2, model=4)          # 8 devices
    shardings = param_shardings(config, mesh)  # a tree shaped like the params
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from qmotto.models import llama
from qmotto.utils import numbers

DATA_AXIS = "data"
MODEL_AXIS = "model"
MESH_AXES = (DATA_AXIS, MODEL_AXIS)

# Logical dimension name -> mesh axis (None: replicated).
LOGICAL_RULES = {"vocab": MODEL_AXIS, "heads": MODEL_AXIS, "kv_heads": MODEL_AXIS, "mlp": MODEL_AXIS}

# Logical names of each parameter's dimensions, by its path in the tree
# (stacked layer parameters lead with None, the layer axis).
_LOGICAL_AXES = {
    ("embed", "embedding"): ("vocab", None),
    ("lm_head", "kernel"): (None, "vocab"),
    ("final_norm", "scale"): (None,),
    ("layers", "attn", "q", "kernel"): (None, None, "heads"),
    ("layers", "attn", "q", "bias"): (None, "heads"),
    ("layers", "attn", "k", "kernel"): (None, None, "kv_heads"),
    ("layers", "attn", "k", "bias"): (None, "kv_heads"),
    ("layers", "attn", "v", "kernel"): (None, None, "kv_heads"),
    ("layers", "attn", "v", "bias"): (None, "kv_heads"),
    ("layers", "attn", "o", "kernel"): (None, "heads", None),
    ("layers", "mlp", "gate", "kernel"): (None, None, "mlp"),
    ("layers", "mlp", "up", "kernel"): (None, None, "mlp"),
    ("layers", "mlp", "down", "kernel"): (None, "mlp", None),
}


def make_mesh(data: int | None = None, model: int = 1, *, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 2-D `jax.sharding.Mesh` with axes ("data", "model") of sizes (data, model).

  `make_mesh()` puts every device on "data" (groups split over all of them,
  each model whole on every device); `make_mesh(data=2, model=4)` splits
  the weights over 4 devices and the groups over 2 such sets.

  Args:
    data: devices along "data" (default: all devices / model).
    model: devices along "model", the tensor-parallel width, >= 1.
    devices: the devices (default `jax.devices()`: every process's, after
      `initialize_distributed`); their count must be data * model. They
      are laid out with `jax.experimental.mesh_utils.create_device_mesh`
      so that a "model" group sits on the fastest links (a TPU slice's
      torus, a GPU node's NVLink).
  """
  devices = jax.devices() if devices is None else list(devices)
  if not devices or not all(isinstance(d, jax.Device) for d in devices):
    raise ValueError(f"devices must be a non-empty sequence of jax devices, got {devices!r}.")
  model = numbers.check_int("model", model, minimum=1)
  if data is None:
    if len(devices) % model:
      raise ValueError(f"model={model} must divide the {len(devices)} devices (data = devices / model).")
    data = len(devices) // model
  data = numbers.check_int("data", data, minimum=1)
  if data * model != len(devices):
    raise ValueError(
        f"data={data} x model={model} = {data * model} devices, but {len(devices)} are given; "
        "pass devices= or sizes whose product is the device count."
    )
  from jax.experimental import mesh_utils  # pylint: disable=g-import-not-at-top

  try:
    grid = mesh_utils.create_device_mesh((data, model), devices=devices)
  except (ValueError, NotImplementedError, AssertionError):
    grid = np.array(devices).reshape(data, model)  # devices without a known topology (CPU, mixed).
  return Mesh(grid, MESH_AXES)


def check_mesh(mesh: Mesh, what: str = "mesh", *, abstract: bool = False) -> Mesh:
  """Raises unless `mesh` is a jax Mesh with the axes ("data", "model").

  With `abstract=True` a `jax.sharding.AbstractMesh` (sizes without
  devices, e.g. `AbstractMesh((2, 4), ("data", "model"))` for a v5e-8) is
  accepted too: enough to plan a layout, not to place arrays.
  """
  kinds = (Mesh, jax.sharding.AbstractMesh) if abstract else (Mesh,)
  if not isinstance(mesh, kinds):
    names = " or jax.sharding.AbstractMesh" if abstract else ""
    raise ValueError(
        f"{what} must be a jax.sharding.Mesh{names} (see qmotto.sharding.make_mesh), got {type(mesh).__name__}."
    )
  if tuple(mesh.axis_names) != MESH_AXES:
    raise ValueError(
        f"{what} must have the axes {MESH_AXES} (qmotto.sharding.make_mesh(data=, model=)), "
        f"got {tuple(mesh.axis_names)}."
    )
  return mesh


def model_parallelism(mesh: Mesh) -> int:
  """M, the size of the mesh's "model" axis."""
  return int(mesh.shape[MODEL_AXIS])


def check_divisible(config: llama.LlamaConfig, mesh: Mesh) -> None:
  """Raises, with the numbers, unless the mesh's "model" size M splits the model.

  M must divide the query heads H, the MLP width F and the vocabulary V (a
  block of the vocabulary or of the heads per device); the key/value heads
  KV are split when M divides them and replicated otherwise.
  """
  m = model_parallelism(check_mesh(mesh, abstract=True))
  sizes = {"num_heads": config.num_heads, "intermediate_size": config.intermediate_size, "vocab_size": config.vocab_size}
  bad = {name: size for name, size in sizes.items() if size % m}
  if bad:
    allowed = sorted({d for d in range(1, config.num_heads + 1) if all(s % d == 0 for s in sizes.values())})
    raise ValueError(
        f"mesh 'model' axis of size {m} does not divide {', '.join(f'{k}={v}' for k, v in bad.items())}: "
        f"tensor parallelism splits whole heads, MLP units and vocabulary rows. "
        f"Model sizes that divide this model: {allowed}."
    )


def kv_heads_sharded(config: llama.LlamaConfig, mesh: Mesh) -> bool:
  """Whether the key/value heads (and the KV cache) are split over "model" (else replicated)."""
  return config.num_kv_heads % model_parallelism(mesh) == 0


def _mesh_axis(name: str | None, config: llama.LlamaConfig, mesh: Mesh) -> str | None:
  if name is None or model_parallelism(mesh) == 1:
    return None
  if name == "kv_heads" and not kv_heads_sharded(config, mesh):
    return None
  return LOGICAL_RULES[name]


def param_specs(config: llama.LlamaConfig, mesh: Mesh) -> dict:
  """A tree of PartitionSpecs shaped like the parameters of `config`."""
  check_divisible(config, mesh)
  shapes = llama.param_shapes(config)

  def spec(path, shape):
    keys = tuple(p.key for p in path)
    names = _LOGICAL_AXES.get(keys, (None,) * len(shape))
    return P(*(_mesh_axis(n, config, mesh) for n in names))

  return jax.tree_util.tree_map_with_path(spec, shapes, is_leaf=lambda x: isinstance(x, tuple))


def param_shardings(config: llama.LlamaConfig, mesh: Mesh) -> dict:
  """A tree of NamedShardings shaped like the parameters of `config` (see the module docstring)."""
  return jax.tree.map(lambda s: NamedSharding(mesh, s), param_specs(config, mesh),
                      is_leaf=lambda x: isinstance(x, P))


def cache_spec(config: llama.LlamaConfig, mesh: Mesh) -> P:
  """PartitionSpec of a KVCache tensor [L, B, KV, S, Dh]: rows over "data", heads over "model"."""
  kv = MODEL_AXIS if model_parallelism(mesh) > 1 and kv_heads_sharded(config, mesh) else None
  return P(None, DATA_AXIS, kv, None, None)


def constrain_cache(cache: llama.KVCache | llama.GroupCache, model: llama.Model):
  """The cache with its key/value heads laid over "model" as the k/v weights are (no-op without a mesh).

  A GroupCache has both its prompt and its sample caches laid out so.

  The row axis is left to the partitioner (`PartitionSpec.UNCONSTRAINED`),
  so the same code runs under plain `jit` (rows follow the prompts) and
  inside a `shard_map` that is manual over "data".
  """
  if model.mesh is None or model_parallelism(model.mesh) == 1:
    return cache
  kv = MODEL_AXIS if kv_heads_sharded(model.config, model.mesh) else None
  spec = P(None, P.UNCONSTRAINED, kv, None, None)
  # Inside a shard_map the context mesh (manual over "data") must be the
  # constraint's mesh; under plain jit it is empty and the model's is used.
  context = jax.sharding.get_abstract_mesh()
  sharding = NamedSharding(model.mesh if context.empty else context, spec)
  def constrain(kv_cache: llama.KVCache) -> llama.KVCache:
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), kv_cache)

  if isinstance(cache, llama.GroupCache):
    return cache.replace(prompt=constrain(cache.prompt), samples=constrain(cache.samples))
  return constrain(cache)


def place(x, sharding: jax.sharding.Sharding):
  """Places x (host or device data, the same on every process) with `sharding`.

  A process-local jax.Array (a key or weights made on this process's first
  device) cannot be `device_put` onto devices of other processes; it goes
  through the host instead, each process uploading the blocks its own
  devices hold, as multi-host JAX programs do (every process holds the same
  value). Typed PRNG keys travel as their key data.
  """
  if isinstance(x, jax.core.Tracer):
    return x  # Under the caller's jit: shard_map's in_specs place it.
  if isinstance(x, jax.Array):
    if x.sharding == sharding:
      return x
    if sharding.is_fully_addressable or not x.is_fully_addressable:
      return jax.device_put(x, sharding)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      data = place(np.asarray(jax.random.key_data(x)), sharding)
      return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
  host = np.asarray(x)
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_model(model: llama.Model, mesh: Mesh) -> llama.Model:
  """The same model with its parameters placed on `mesh` (see `param_shardings`).

  For a model already in memory (e.g. `init_model`); `load_model(..., mesh=)`
  places the weights sharded as it reads them instead.
  """
  if not isinstance(model, llama.Model):
    raise ValueError(f"model must be a qmotto.models.Model, got {type(model).__name__}.")
  shardings = param_shardings(model.config, mesh)
  params = jax.tree.map(place, model.params, shardings)
  return model.replace(params=params, mesh=mesh)


def weight_bytes_per_device(config: llama.LlamaConfig, mesh: Mesh) -> int:
  """Bytes of parameters each device holds under `param_shardings` (computed, nothing allocated)."""
  total = 0
  specs = param_specs(config, mesh)
  itemsize = config.weight_dtype.itemsize
  for shape, spec in zip(
      jax.tree.leaves(llama.param_shapes(config), is_leaf=lambda x: isinstance(x, tuple)),
      jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, P)),
  ):
    total += int(np.prod(NamedSharding(mesh, spec).shard_shape(shape))) * itemsize
  return total
