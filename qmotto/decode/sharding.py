"""Scale out: coupled sampling with the group axis sharded over devices.

Groups (prompts) are independent: group g is randomized with
`fold_in(key, group_ids[g])` and nothing else, and its k samples share only
its own quasi-Monte Carlo points. So the group axis shards over every device
with no communication: `jax.shard_map` runs the single-device loop
(`qmotto.generate` or `qmotto.sample_sequences_batched`) on each device's
slice of groups, with that slice's *global* group ids.

    groups = GroupSharding(make_mesh())          # all devices, group_batch=1
    out = groups.generate(key, model, prompts, lengths, num_samples=16,
                          max_new_tokens=64, sampling="lattice")

`GroupSharding` is one frozen object (the mesh and how many of a device's
groups share a forward pass); its `generate` and `sample_sequences_batched`
take the same arguments as the single-device functions. Each device
builds only its own groups' points and rotations, and a group's samples are
the same whether it runs on 1 device or on 8 (see "Bit-identity" below).

Layout: a 1-D mesh with one axis (default "data"). Prompts, prompt lengths
and group ids are sharded `NamedSharding(mesh, P("data"))` on their first
(group) axis; the key, the model parameters and the token ids are replicated.
The outputs are `jax.Array`s sharded the same way on their group axis: device
d of the mesh holds groups [d * G / D, (d + 1) * G / D). G must be a multiple
of the device count D.

Multi-host: call `initialize_distributed` first on every process, build the
mesh over `jax.devices()` (all processes' devices), and call the sharded
functions on every process with the same key and the same full host-side
(NumPy) prompts; each process only uploads the shards its devices hold. The
outputs are global arrays: read a process's own groups from
`out.tokens.addressable_shards`, or gather everything with
`jax.experimental.multihost_utils.process_allgather`.

Bit-identity. A group's uniforms depend only on (key, group id), so which
device makes them never matters. The logits can: on the CPU the tiny test
model's logits for a batch of 1 and of 8 groups differ in the last bits, and
code-mode samplers (lattice, stratified, antithetic) rescale the carried
coordinate every step, which turns such differences into different (still
exact) later tokens. So by default (`group_batch=1`) each device decodes its
groups one at a time in a loop: every group runs the same program, with k
rows per forward pass, whatever the device count, and the samples are
bit-identical on 1 and on D devices for every sampler. `group_batch=b` (b
dividing G / D) batches b groups per forward pass, and `group_batch=None`
all of a device's groups, for throughput when k is small; then only a
layout with the same per-device group count reproduces the samples
bit for bit (token-mode samplers, sobol and iid, change a token only when a
uniform lies within rounding of a bin edge, and matched in the tests). A
model-agnostic `logits_fn` whose rows do not depend on the batch (a table, a
row-wise function) is bit-identical with any group_batch.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from qmotto.decode import checks
from qmotto.decode import generate as generate_lib
from qmotto.decode import loop
from qmotto.models import llama
from qmotto.sampling import logit_checks
from qmotto.sampling import options as options_lib

DEFAULT_AXIS = "data"


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: int | Sequence[int] | None = None,
    **kwargs,
) -> None:
  """Joins a multi-host JAX job: a thin wrapper over `jax.distributed.initialize`.

  Call it once per process, before any other JAX call. On Cloud TPU, SLURM and
  Open MPI all arguments may be left out (JAX detects them); elsewhere give
  all three of coordinator_address ("host:port" of process 0), num_processes
  and process_id. Afterwards `jax.devices()` lists every process's devices and
  `make_mesh()` spans them all.

  Args:
    coordinator_address: "host:port" of the coordinator (process 0).
    num_processes: the number of processes, >= 1.
    process_id: this process's index in [0, num_processes).
    local_device_ids: optional devices of this process to use.
    **kwargs: passed on to `jax.distributed.initialize`.
  """
  if num_processes is not None:
    checks.check_count("num_processes", num_processes)
  if process_id is not None:
    checks.check_count("process_id", process_id, minimum=0)
    if num_processes is not None and process_id >= num_processes:
      raise ValueError(f"process_id={process_id} must be < num_processes={num_processes}.")
  if coordinator_address is not None:
    if not isinstance(coordinator_address, str) or ":" not in coordinator_address:
      raise ValueError(f"coordinator_address must be a 'host:port' string, got {coordinator_address!r}.")
  jax.distributed.initialize(
      coordinator_address=coordinator_address,
      num_processes=num_processes,
      process_id=process_id,
      local_device_ids=local_device_ids,
      **kwargs,
  )


def make_mesh(axis_name: str = DEFAULT_AXIS, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh named `axis_name` over `devices` (default: all, `jax.devices()`)."""
  if not isinstance(axis_name, str) or not axis_name:
    raise ValueError(f"axis_name must be a non-empty string, got {axis_name!r}.")
  devices = jax.devices() if devices is None else list(devices)
  if not devices:
    raise ValueError("devices must hold at least one device.")
  return Mesh(np.array(devices), (axis_name,))


def _put(x, sharding: NamedSharding):
  """Places x (host or device data, the same on every process) with `sharding`."""
  if isinstance(x, jax.core.Tracer):
    return x  # Under the caller's jit: the shard_map in_specs place it.
  if isinstance(x, jax.Array):
    return x if x.sharding == sharding else jax.device_put(x, sharding)
  host = np.asarray(x)
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _in_batches(run, inputs, group_batch: int | None):
  """run(inputs) -> (outputs, invalid) on the whole group axis, or `group_batch` groups at a time.

  With a group_batch, the groups go through a `lax.fori_loop` in batches of
  that size, so every batch is the same computation whatever the number of
  groups a device holds. Two details keep XLA from compiling the one-batch
  case differently (found empirically on the CPU: a device with one batch
  got logits that differ in the last bits from a device with several): the
  buffers hold one spare batch, so a batch is never the whole buffer, and
  the trip count goes through an optimization barrier, so a loop of one trip
  is not inlined.
  """
  if group_batch is None:
    return run(inputs)
  num_groups = jax.tree.leaves(inputs)[0].shape[0]
  trips = num_groups // group_batch
  inputs = jax.tree.map(lambda x: jnp.concatenate([x, x[:group_batch]]), inputs)
  take = lambda i: jax.tree.map(
      lambda x: jax.lax.dynamic_slice_in_dim(x, i * group_batch, group_batch, axis=0), inputs
  )
  shapes = jax.eval_shape(run, take(0))
  init = (
      jax.tree.map(lambda a: jnp.zeros(((trips + 1) * a.shape[0], *a.shape[1:]), a.dtype), shapes[0]),
      jnp.bool_(False),
  )

  def body(i, carry):
    outputs, invalid = carry
    out, bad = run(take(i))
    outputs = jax.tree.map(
        lambda buf, o: jax.lax.dynamic_update_slice_in_dim(buf, o, i * group_batch, axis=0),
        outputs,
        out,
    )
    return outputs, invalid | bad

  # A trip count XLA cannot know: it would inline a loop of one trip.
  zero = jnp.minimum(jax.lax.optimization_barrier(jnp.int32(0)), 0)
  outputs, invalid = jax.lax.fori_loop(0, trips + zero, body, init)
  return jax.tree.map(lambda x: x[:num_groups], outputs), invalid


@dataclasses.dataclass(frozen=True)
class GroupSharding:
  """The group axis split over the devices of a 1-D mesh (hashable: a static jit argument).

  Attributes:
    mesh: a 1-D `jax.sharding.Mesh` (see `make_mesh`); its one axis holds
      the groups.
    group_batch: how many of a device's groups share a forward pass. 1 (the
      default): one at a time, which makes the samples bit-identical on any
      device count for every sampler (see the module docstring); an int b
      dividing the groups per device: b at a time; None: all of a device's
      groups as one batch (the samples then equal the single-device function
      on the same batches).
  """

  mesh: Mesh
  group_batch: int | None = 1

  def __post_init__(self):
    if not isinstance(self.mesh, Mesh):
      raise ValueError(f"mesh must be a jax.sharding.Mesh, got {type(self.mesh).__name__}.")
    if len(self.mesh.axis_names) != 1:
      raise ValueError(
          f"mesh must be 1-D (one axis for the groups), got axes {self.mesh.axis_names}; see make_mesh."
      )
    if self.group_batch is not None:
      object.__setattr__(self, "group_batch", checks.check_count("group_batch", self.group_batch))

  @property
  def axis(self) -> str:
    """The mesh axis that holds the groups."""
    return self.mesh.axis_names[0]

  @property
  def num_devices(self) -> int:
    return self.mesh.devices.size

  def sharding(self, sharded: bool = True) -> NamedSharding:
    """NamedSharding of an array split on its first (group) axis, or replicated."""
    return NamedSharding(self.mesh, P(self.axis) if sharded else P())

  def check_num_groups(self, num_groups: int, what: str = "num_groups") -> None:
    """Raises unless `num_groups` splits evenly over the devices and into group_batch batches."""
    if num_groups % self.num_devices:
      raise ValueError(
          f"{what}={num_groups} must be a multiple of the mesh's device count {self.num_devices}: "
          f"the {what} axis is split evenly over the devices. Pad it (e.g. repeat a prompt) "
          "or use fewer devices."
      )
    per_device = num_groups // self.num_devices
    if self.group_batch is not None and per_device % self.group_batch:
      raise ValueError(
          f"group_batch={self.group_batch} must divide the {per_device} groups of each device "
          f"({what}={num_groups} over {self.num_devices} devices)."
      )

  def group_ids(self, num_groups: int, group_ids=None) -> jax.Array:
    """uint32[G] group ids (default arange(G)) sharded over the mesh: device d holds its own."""
    self.check_num_groups(num_groups)
    return _put(checks.check_group_ids(group_ids, num_groups), self.sharding())

  def generate(
      self,
      key: jax.Array,
      model: llama.Model,
      prompts,
      prompt_lengths,
      *,
      num_samples: int,
      max_new_tokens: int,
      sampling: options_lib.SamplingOptions | str = "lattice",
      eos_id: int | None = None,
      pad_id: int = 0,
      group_ids=None,
  ) -> generate_lib.GenerateOutput:
    """`qmotto.generate` with the prompts sharded over the mesh.

    Same arguments, checks and samples as `generate` (group p is randomized
    by `fold_in(key, group_ids[p])`, default group_ids = arange(P)). The P
    prompts are split evenly over the mesh's D devices, so P must be a
    multiple of D; each device prefills and decodes its P / D prompts with
    the single-device loop and makes only its own groups' quasi-Monte Carlo
    points. The model parameters are replicated.

    Returns:
      GenerateOutput(tokens int32[P, k, N], logprobs float32[P, k, N],
      lengths int32[P, k]), each sharded `NamedSharding(mesh, P(axis))` on
      the prompt axis.
    """
    if len(np.shape(prompts)) == 2:
      self.check_num_groups(np.shape(prompts)[0], "the number of prompts P")
    arrays, static = generate_lib.prepare_generate(
        key, model, prompts, prompt_lengths, num_samples, max_new_tokens, sampling, eos_id, pad_id, group_ids
    )
    key, model, prompts, prompt_lengths, group_ids, eos, pad = arrays
    shard, replicated = self.sharding(), self.sharding(sharded=False)
    output, invalid = _sharded_generate(
        _put(key, replicated),
        jax.tree.map(lambda x: _put(x, replicated), model),
        _put(prompts, shard),
        _put(prompt_lengths, shard),
        _put(group_ids, shard),
        eos,
        pad,
        groups=self,
        **static,
    )
    if static["options"].check_logits:
      logit_checks.raise_if_invalid(invalid, *generate_lib.LOGITS_SOURCE)
    return output

  def sample_sequences_batched(
      self,
      key: jax.Array,
      logits_fn: loop.LogitsFn,
      *,
      num_groups: int,
      num_samples: int,
      length: int,
      sampling: options_lib.SamplingOptions | str = "lattice",
      pad_id: int = 0,
      group_ids=None,
  ) -> jax.Array:
    """`qmotto.sample_sequences_batched` with the G groups sharded over the mesh.

    Same arguments and samples; G must be a multiple of the device count D.
    `logits_fn` runs on each device with that device's slice: tokens
    int32[G / D, N, length] -> float[G / D, N, vocab], so it must compute
    each group's logits from that group's tokens alone (a model applied row
    by row), not from its position in the batch.

    Returns:
      int32[G, N, length], sharded `NamedSharding(mesh, P(axis))` on the group axis.
    """
    static = loop.prepare_sampling(logits_fn, num_groups, num_samples, length, sampling, pad_id)
    key = _put(key, self.sharding(sharded=False))
    group_ids = self.group_ids(int(num_groups), group_ids)
    sample_ids = jnp.arange(static["num_samples"], dtype=jnp.uint32)  # every point of each group.
    tokens, invalid = _sharded_sample_groups(key, group_ids, sample_ids, groups=self, **static)
    if static["options"].check_logits:
      logit_checks.raise_if_invalid(invalid, *loop.LOGITS_SOURCE)
    return tokens


def _any_invalid(invalid: jax.Array, axis: str) -> jax.Array:
  return jax.lax.psum(invalid.astype(jnp.int32), axis) > 0


@functools.partial(jax.jit, static_argnames=("groups", "num_samples", "max_new_tokens", "options"))
def _sharded_generate(key, model, prompts, prompt_lengths, group_ids, eos_id, pad_id, *, groups, **static):
  shard, rep = P(groups.axis), P()

  def local(key, model, prompts, prompt_lengths, group_ids, eos_id, pad_id):
    def run(batch):
      prompts, prompt_lengths, group_ids = batch
      return generate_lib.generate_groups(key, model, prompts, prompt_lengths, group_ids, eos_id, pad_id, **static)

    output, invalid = _in_batches(run, (prompts, prompt_lengths, group_ids), groups.group_batch)
    return output, _any_invalid(invalid, groups.axis)

  return jax.shard_map(
      local,
      mesh=groups.mesh,
      in_specs=(rep, rep, shard, shard, shard, rep, rep),
      out_specs=(shard, rep),
      check_vma=False,
  )(key, model, prompts, prompt_lengths, group_ids, eos_id, pad_id)


@functools.partial(
    jax.jit, static_argnames=("groups", "logits_fn", "num_samples", "length", "options", "pad_id")
)
def _sharded_sample_groups(key, group_ids, sample_ids, *, groups, **static):
  def local(key, group_ids, sample_ids):
    def run(group_ids):
      return loop.sample_groups(key, group_ids, sample_ids, **static)

    tokens, invalid = _in_batches(run, group_ids, groups.group_batch)
    return tokens, _any_invalid(invalid, groups.axis)

  return jax.shard_map(
      local,
      mesh=groups.mesh,
      in_specs=(P(), P(groups.axis), P()),
      out_specs=(P(groups.axis), P()),
      check_vma=False,
  )(key, group_ids, sample_ids)
