"""Scale out: coupled sampling with the group axis sharded over devices.

Groups (prompts) are independent: group g is randomized with
`fold_in(key, group_ids[g])` and nothing else, and its k samples share only
its own quasi-Monte Carlo points. So the group axis shards over every device
with no communication: `jax.shard_map` runs the single-device loop
(`qmotto.generate` or `qmotto.sample_sequences_batched`) on each device's
slice of groups, with that slice's *global* group ids.

    groups = GroupSharding(make_mesh())          # all devices on "data", group_batch=1
    out = groups.generate(key, model, prompts, lengths, num_samples=16,
                          max_new_tokens=64, sampling="lattice")

    mesh = make_mesh(data=2, model=4)            # weights split 4 ways, groups 2 ways
    model, tokenizer = qmotto.load_model(name, mesh=mesh, param_dtype="bfloat16")
    out = GroupSharding(mesh).generate(key, model, prompts, lengths, ...)

`GroupSharding` is one frozen object (the mesh and how many of a device's
groups share a forward pass); its `generate` and `sample_sequences_batched`
take the same arguments as the single-device functions. Each device
builds only its own groups' points and rotations, and a group's samples are
the same whether it runs on 1 device or on 8 (see "Bit-identity" below).

Layout: a ("data", "model") mesh from `make_mesh(data=D, model=M)`.
Prompts, prompt lengths and group ids are sharded `NamedSharding(mesh,
P("data"))` on their first (group) axis; the key and the token ids are
replicated. The model's weights are split over "model" (attention heads, MLP
units and the vocabulary, Megatron-style; `qmotto.models.partitioning`) and
replicated over "data", and so is the KV cache's head axis. `jax.shard_map`
is manual over "data" only: within a group shard, the SPMD partitioner splits
each forward pass over the M devices of "model". `make_mesh()` (M = 1) keeps
a whole model on every device. The outputs are `jax.Array`s sharded on their
group axis over "data": shard d holds groups [d * G / D, (d + 1) * G / D). G
must be a multiple of D.

Multi-host: call `initialize_distributed` first on every process, build the
mesh over `jax.devices()` (all processes' devices; `make_mesh` does), and call the sharded
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

With a "model" axis larger than 1, each forward pass sums partial results
over the model devices (an all-reduce), and the order of that sum depends on
the collectives: in one process XLA's own, across processes (after
`initialize_distributed`) gloo's on CPUs. So code-mode samples of a
multi-process job equal those of a one-process *distributed* job, not of a
plain process (`tests/decode/test_multiprocess.py`); with model = 1 they
equal a plain process too.
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
from qmotto.decode import memory
from qmotto.models import llama
from qmotto.models import partitioning
from qmotto.sampling import logit_checks
from qmotto.sampling import options as options_lib

DATA_AXIS = partitioning.DATA_AXIS
MODEL_AXIS = partitioning.MODEL_AXIS
make_mesh = partitioning.make_mesh
plan_memory = memory.plan_memory
suggest_mesh = memory.suggest_mesh


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
  """Groups split over the "data" axis of a ("data", "model") mesh (hashable: a static jit argument).

  Attributes:
    mesh: a `jax.sharding.Mesh` with axes ("data", "model") (see
      `make_mesh`). The groups are split over "data"; a model is split over
      "model" (tensor parallelism, `qmotto.models.partitioning`), so each
      "model" group of devices decodes its groups together.
    group_batch: how many of a "data" shard's groups share a forward pass. 1
      (the default): one at a time, which makes the samples bit-identical
      for any "data" size for every sampler (see the module docstring); an
      int b dividing the groups per shard: b at a time; None: all of a
      shard's groups as one batch (the samples then equal the
      single-device function on the same batches).
  """

  mesh: Mesh
  group_batch: int | None = 1

  def __post_init__(self):
    partitioning.check_mesh(self.mesh)
    if self.group_batch is not None:
      object.__setattr__(self, "group_batch", checks.check_count("group_batch", self.group_batch))

  @property
  def axis(self) -> str:
    """The mesh axis that holds the groups."""
    return DATA_AXIS

  @property
  def num_devices(self) -> int:
    """D, the number of group shards: the size of the "data" axis."""
    return int(self.mesh.shape[DATA_AXIS])

  def sharding(self, sharded: bool = True) -> NamedSharding:
    """NamedSharding of an array split on its first (group) axis over "data", or replicated."""
    return NamedSharding(self.mesh, P(self.axis) if sharded else P())

  def place_model(self, model: llama.Model) -> llama.Model:
    """The model with its parameters on this mesh: split over "model", replicated over "data".

    A model loaded with this mesh (`load_model(..., mesh=mesh)`) is used as
    it is; a model on one device is placed now (`partitioning.shard_model`).
    """
    if model.mesh is not None:
      if model.mesh != self.mesh:
        raise ValueError(
            "model is sharded over another mesh than this GroupSharding's; load it with "
            "load_model(..., mesh=groups.mesh) or pass a GroupSharding of model.mesh."
        )
      return model
    return partitioning.shard_model(model, self.mesh)

  def check_num_groups(self, num_groups: int, what: str = "num_groups") -> None:
    """Raises unless `num_groups` splits evenly over "data" and into group_batch batches."""
    if num_groups % self.num_devices:
      raise ValueError(
          f"{what}={num_groups} must be a multiple of the mesh's 'data' size {self.num_devices}: "
          f"the {what} axis is split evenly over it. Pad it (e.g. repeat a prompt) "
          "or use a smaller 'data' axis."
      )
    per_device = num_groups // self.num_devices
    if self.group_batch is not None and per_device % self.group_batch:
      raise ValueError(
          f"group_batch={self.group_batch} must divide the {per_device} groups of each 'data' shard "
          f"({what}={num_groups} over {self.num_devices} shards)."
      )

  def group_ids(self, num_groups: int, group_ids=None) -> jax.Array:
    """uint32[G] group ids (default arange(G)) sharded over the mesh: device d holds its own."""
    self.check_num_groups(num_groups)
    return partitioning.place(checks.check_group_ids(group_ids, num_groups), self.sharding())

  def generate(
      self,
      key: jax.Array,
      model: llama.Model,
      prompts,
      prompt_lengths,
      *,
      num_samples: int | loop.GroupSlice,
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
    points. The model parameters are replicated. A `GroupSlice` as
    num_samples draws the same slots of every group as `generate` does.

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
    key, model, prompts, prompt_lengths, group_ids, slots, eos, pad = arrays
    # Refuse up front, with the numbers, a call that cannot fit (where the
    # devices report their memory; the CPU does not).
    memory.plan_memory(
        model.config, self.mesh, num_prompts=prompts.shape[0], num_samples=slots.size,
        prompt_len=prompts.shape[1], max_new_tokens=static["max_new_tokens"],
    ).check()
    shard, replicated = self.sharding(), self.sharding(sharded=False)
    output, invalid = _sharded_generate(
        partitioning.place(key, replicated),
        self.place_model(model),
        partitioning.place(prompts, shard),
        partitioning.place(prompt_lengths, shard),
        partitioning.place(group_ids, shard),
        slots,
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
      num_samples: int | loop.GroupSlice,
      length: int,
      sampling: options_lib.SamplingOptions | str = "lattice",
      pad_id: int = 0,
      group_ids=None,
  ) -> jax.Array:
    """`qmotto.sample_sequences_batched` with the G groups sharded over the mesh.

    Same arguments (a `GroupSlice` as num_samples included) and samples; G
    must be a multiple of the device count D.
    `logits_fn` runs on each device with that device's slice: tokens
    int32[G / D, N, length] -> float[G / D, N, vocab], so it must compute
    each group's logits from that group's tokens alone (a model applied row
    by row), not from its position in the batch.

    Returns:
      int32[G, n, length], sharded `NamedSharding(mesh, P(axis))` on the group axis.
    """
    sample_ids, static = loop.prepare_sampling(logits_fn, num_groups, num_samples, length, sampling, pad_id)
    key = partitioning.place(key, self.sharding(sharded=False))
    group_ids = self.group_ids(int(num_groups), group_ids)
    tokens, invalid = _sharded_sample_groups(key, group_ids, sample_ids, groups=self, **static)
    if static["options"].check_logits:
      logit_checks.raise_if_invalid(invalid, *loop.LOGITS_SOURCE)
    return tokens


def _any_invalid(invalid: jax.Array, axis: str) -> jax.Array:
  return jax.lax.psum(invalid.astype(jnp.int32), axis) > 0


@functools.partial(jax.jit, static_argnames=("groups", "max_new_tokens", "options"))
def _sharded_generate(key, model, prompts, prompt_lengths, group_ids, slots, eos_id, pad_id, *, groups, **static):
  shard, rep = P(groups.axis), P()

  def local(key, model, prompts, prompt_lengths, group_ids, slots, eos_id, pad_id):
    def run(batch):
      prompts, prompt_lengths, group_ids = batch
      return generate_lib.generate_groups(
          key, model, prompts, prompt_lengths, group_ids, slots, eos_id, pad_id, **static
      )

    output, invalid = _in_batches(run, (prompts, prompt_lengths, group_ids), groups.group_batch)
    return output, _any_invalid(invalid, groups.axis)

  # Manual over "data" only: within a group shard, the model's "model" axis
  # stays with the SPMD partitioner, which splits each forward pass over it
  # as the parameters' shardings say.
  return jax.shard_map(
      local,
      mesh=groups.mesh,
      in_specs=(rep, rep, shard, shard, shard, rep, rep, rep),
      out_specs=(shard, rep),
      axis_names={DATA_AXIS},
      check_vma=False,
  )(key, model, prompts, prompt_lengths, group_ids, slots, eos_id, pad_id)


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
      axis_names={DATA_AXIS},
      check_vma=False,
  )(key, group_ids, sample_ids)
