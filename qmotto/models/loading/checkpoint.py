"""Orbax checkpoints of qmotto models (for models the project trains or fine-tunes).

Layout (orbax-checkpoint's CheckpointManager, one folder per step):

    path/<step>/params/   the parameter tree (orbax's standard pytree format)
    path/<step>/config/   JSON: {"format": "qmotto.models.Model", "version": 2,
                                 "config": {LlamaConfig fields}, "step": step}
    path/<step>/extra/    optional: any other pytree (e.g. optimizer state)
    path/<step>/metadata/ optional JSON: e.g. {"tokenizer": CharTokenizer.to_dict(),
                          "task": Task.to_dict()}; `load_model` rebuilds the tokenizer

`restore_checkpoint(path)` resumes from the latest step.

Version 2 stores the layers stacked (`params["layers"]`, one leading layer
axis, as the model scans them). Version 1 checkpoints (one "layers_<i>"
subtree per layer, qmotto before the scan over layers) still load: their
layers are stacked on restore. Their optimizer state ("extra") cannot resume
a run, since its tree is per layer too; that is refused with a message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import sys
import types
from typing import Any, NamedTuple

import jax
import numpy as np

from qmotto.models import partitioning
from qmotto.models.llama import LlamaConfig
from qmotto.models.llama import Model
from qmotto.models.llama import param_shapes
from qmotto.models.loading import _common
from qmotto.utils import numbers

FORMAT = "qmotto.models.Model"
FORMAT_VERSION = 2
_PER_LAYER_VERSION = 1  # "layers_<i>" subtrees, stacked on restore.


class RestoredCheckpoint(NamedTuple):
  model: Model
  step: int
  extra: Any  # None if the checkpoint has no extra item
  metadata: dict | None = None  # the JSON metadata item, None if absent


def _ocp():
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  return ocp


def _manager(path: str, *, max_to_keep: int | None = None, create: bool = False):
  ocp = _ocp()
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create)
  return ocp.CheckpointManager(path, options=options)


def _abspath(path) -> str:
  return os.path.abspath(os.fspath(path))


def checkpoint_steps(path: str | os.PathLike) -> list[int]:
  """The saved steps under `path`, ascending ([] if none or no such directory)."""
  path = _abspath(path)
  if not os.path.isdir(path):
    return []
  with _manager(path) as mngr:
    return sorted(mngr.all_steps())


def latest_checkpoint_step(path: str | os.PathLike) -> int | None:
  steps = checkpoint_steps(path)
  return steps[-1] if steps else None


def _config_json(config: LlamaConfig, step: int) -> dict:
  return {"format": FORMAT, "version": FORMAT_VERSION, "config": dataclasses.asdict(config), "step": step}


def save_checkpoint(
    path: str | os.PathLike,
    model: Model,
    step: int,
    *,
    extra: Any = None,
    metadata: dict | None = None,
    max_to_keep: int | None = 3,
) -> str:
  """Saves `model` (config as JSON + params) as checkpoint `step` under `path`.

  Args:
    path: the checkpoint directory (created if needed); one subfolder per step.
    model: a qmotto.models.Model.
    step: a non-negative int, larger than the steps already saved.
    extra: an optional pytree saved beside it (e.g. optimizer state).
    metadata: an optional JSON-serializable dict saved beside it (tokenizer, task).
    max_to_keep: how many of the newest steps to keep (None: all).

  Returns:
    The step's directory.
  """
  ocp = _ocp()
  if not isinstance(model, Model):
    raise ValueError(f"model must be a qmotto.models.Model, got {type(model).__name__}.")
  step = numbers.check_int("step", step, minimum=0)
  path = _abspath(path)
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"{path}: exists and is not a directory.")
  items = {
      "params": ocp.args.StandardSave(model.params),
      "config": ocp.args.JsonSave(_config_json(model.config, step)),
  }
  if extra is not None:
    items["extra"] = ocp.args.StandardSave(extra)
  if metadata is not None:
    if not isinstance(metadata, dict):
      raise ValueError(f"metadata must be a dict or None, got {type(metadata).__name__}.")
    try:
      json.dumps(metadata)
    except (TypeError, ValueError) as e:
      raise ValueError(f"metadata must be JSON-serializable: {e}") from e
    items["metadata"] = ocp.args.JsonSave(metadata)
  with _manager(path, max_to_keep=max_to_keep, create=True) as mngr:
    existing = mngr.all_steps()
    if step in existing:
      raise ValueError(f"{path}: checkpoint step {step} already exists.")
    if existing and step < max(existing):
      raise ValueError(f"{path}: step {step} is older than the latest saved step {max(existing)}.")
    mngr.save(step, args=ocp.args.Composite(**items))
    mngr.wait_until_finished()
  return os.path.join(path, str(step))


def _shape_paths(tree) -> dict[str, tuple[int, ...]]:
  is_shape = lambda x: isinstance(x, tuple) and all(isinstance(n, int) for n in x)  # noqa: E731
  leaves = jax.tree_util.tree_leaves_with_path(tree, is_leaf=is_shape)
  return {jax.tree_util.keystr(path): shape for path, shape in leaves}


def _check_tree(params, config: LlamaConfig, where: str):
  expected = _shape_paths(param_shapes(config))
  got = _shape_paths(jax.tree.map(lambda x: tuple(int(n) for n in np.shape(x)), params))
  if got == expected:
    return
  missing = sorted(set(expected) - set(got))
  unexpected = sorted(set(got) - set(expected))
  wrong = sorted(p for p in set(expected) & set(got) if expected[p] != got[p])
  details = []
  if missing:
    details.append(f"missing {', '.join(missing[:5])}")
  if unexpected:
    details.append(f"unexpected {', '.join(unexpected[:5])}")
  if wrong:
    details.append(f"{wrong[0]} has shape {got[wrong[0]]}, expected {expected[wrong[0]]}")
  raise ValueError(f"{where}: parameters do not match the saved config: {'; '.join(details)}.")


def _first_line(error: BaseException, limit: int = 160) -> str:
  """The first line of an error's text, at most `limit` characters (TensorStore's run to pages)."""
  text = str(error).strip()
  line = text.splitlines()[0] if text else type(error).__name__
  return line if len(line) <= limit else line[:limit] + "..."


@contextlib.contextmanager
def _quiet_abandoned_reads():
  """Drops the "Exception ignored in <coroutine ...>" pages of a failed orbax read.

  Orbax reads every shard in its own coroutine; when one read fails, the
  others are abandoned, and Python prints each one's TensorStore error (tens
  of lines apiece) as it is garbage-collected. The one ValueError raised
  names the step and says what is wrong; those pages add nothing. Other
  unraisable exceptions still reach the previous hook.
  """
  previous = sys.unraisablehook

  def hook(unraisable):
    code = getattr(unraisable.object, "cr_code", None)
    if isinstance(unraisable.object, types.CoroutineType) and code and "orbax" in code.co_filename:
      return
    previous(unraisable)

  sys.unraisablehook = hook
  try:
    yield
  except BaseException:
    gc.collect()  # a failed read's abandoned coroutines are collected (and silenced) now, not later.
    raise
  finally:
    sys.unraisablehook = previous


def _check_finite(params, where: str) -> None:
  """Raises ValueError naming the first parameter holding a NaN or an infinity."""
  for path, value in jax.tree_util.tree_leaves_with_path(params):
    _common.check_finite(value, f"params{jax.tree_util.keystr(path)}", where)


def restore_checkpoint(
    path: str | os.PathLike,
    step: int | None = None,
    *,
    extra_target: Any = None,
    param_dtype: str | None = None,
    mesh=None,
) -> RestoredCheckpoint:
  """Restores a checkpoint written by `save_checkpoint` (default: the latest step).

  Args:
    path: the checkpoint directory.
    step: which step (default: the latest).
    extra_target: optional pytree (arrays or jax.ShapeDtypeStruct) giving the
      structure of the "extra" item (e.g. an optax state, so that its
      NamedTuples come back); without it, the extra item comes back as nested
      dicts/lists.
    param_dtype: the dtype to hold the weights in (default: as saved).
    mesh: optional ("data", "model") mesh: the weights are restored sharded
      (`qmotto.models.partitioning`), each device reading its own block.

  Returns:
    RestoredCheckpoint(model, step, extra, metadata).

  Raises:
    ValueError: no such directory or step, not a qmotto checkpoint, a config
      beyond any real model (checked before reading the weights), weights
      with NaN or infinite values, or unreadable (a truncated or damaged
      file: one line naming the step, without orbax's traceback).
  """
  ocp = _ocp()
  path = _abspath(path)
  if not os.path.isdir(path):
    raise ValueError(f"{path}: checkpoint directory not found.")
  with _manager(path) as mngr:
    steps = sorted(mngr.all_steps())
    if not steps:
      raise ValueError(f"{path}: no checkpoint steps found (not an orbax checkpoint directory?).")
    if step is None:
      step = steps[-1]
    elif step not in steps:
      raise ValueError(f"{path}: no checkpoint step {step}; saved steps: {steps}.")
    step_dir = os.path.join(path, str(step))
    for item in ("config", "params"):
      if not os.path.isdir(os.path.join(step_dir, item)):
        raise ValueError(f"{step_dir}: not a qmotto model checkpoint (no {item!r} item).")
    try:
      meta = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config
    except Exception as e:  # pylint: disable=broad-except
      # One line, no chained orbax/TensorStore traceback: the cause is the file.
      raise ValueError(
          f"{step_dir}: config item is unreadable or corrupt ({_first_line(e)})."
      ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
      raise ValueError(f"{step_dir}: not a qmotto model checkpoint (config format is not {FORMAT!r}).")
    version = meta.get("version")
    if version not in (_PER_LAYER_VERSION, FORMAT_VERSION):
      raise ValueError(
          f"{step_dir}: unsupported checkpoint version {version!r} (this qmotto reads versions "
          f"{_PER_LAYER_VERSION} and {FORMAT_VERSION})."
      )
    try:
      config = LlamaConfig(**meta["config"])
    except (KeyError, TypeError, ValueError) as e:
      raise ValueError(f"{step_dir}: saved config is invalid: {e}") from e
    if param_dtype is not None:
      config = dataclasses.replace(config, param_dtype=param_dtype)

    per_layer = version == _PER_LAYER_VERSION
    if per_layer or mesh is None:
      items = {"params": ocp.args.StandardRestore()}
    else:  # Each device reads its own block of every weight.
      shardings = partitioning.param_shardings(config, mesh)
      saved_dtype = jax.numpy.dtype(meta["config"].get("param_dtype", "float32"))
      target = jax.tree.map(
          lambda shape, s: jax.ShapeDtypeStruct(shape, saved_dtype, sharding=s),
          param_shapes(config), shardings, is_leaf=lambda x: isinstance(x, tuple),
      )
      items = {"params": ocp.args.StandardRestore(target)}
    has_extra = os.path.isdir(os.path.join(step_dir, "extra"))
    if has_extra and per_layer and extra_target is not None:
      raise ValueError(
          f"{step_dir}: a version-{_PER_LAYER_VERSION} checkpoint (one parameter tree per layer, written "
          "before qmotto scanned its layers): its model loads, with the layers stacked, but its "
          "optimizer state cannot resume this run. Start the run in a new directory from this "
          "checkpoint's model instead."
      )
    if has_extra:
      items["extra"] = ocp.args.StandardRestore(extra_target)
    has_metadata = os.path.isdir(os.path.join(step_dir, "metadata"))
    if has_metadata:
      items["metadata"] = ocp.args.JsonRestore()
    try:
      with _quiet_abandoned_reads():
        restored = mngr.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # pylint: disable=broad-except
      others = [s for s in steps if s != step]
      hint = f"; other saved steps: {others}" if others else ""
      raise ValueError(
          f"{step_dir}: checkpoint is incomplete or corrupt, orbax could not read it "
          f"({type(e).__name__}: {_first_line(e)}){hint}."
      ) from None
  params = restored.params
  if per_layer:
    params = stack_layers(params, config.num_layers)
  _check_tree(params, config, step_dir)
  _check_finite(params, step_dir)
  params = jax.tree.map(lambda x: x.astype(config.weight_dtype), params)
  if mesh is not None and per_layer:
    params = jax.tree.map(jax.device_put, params, partitioning.param_shardings(config, mesh))
  extra = restored.extra if has_extra else None
  metadata = restored.metadata if has_metadata else None
  return RestoredCheckpoint(
      model=Model(config=config, params=params, mesh=mesh), step=step, extra=extra, metadata=metadata
  )


def stack_layers(params: dict, num_layers: int) -> dict:
  """A version-1 parameter tree ("layers_0" ... "layers_<L-1>") with its layers stacked as "layers"."""
  names = [f"layers_{i}" for i in range(num_layers)]
  if not all(name in params for name in names):
    return params  # not per-layer; _check_tree names what is wrong.
  stacked = jax.tree.map(lambda *layers: np.stack([np.asarray(x) for x in layers]), *(params[n] for n in names))
  rest = {k: v for k, v in params.items() if k not in names}
  return {**rest, "layers": stacked}
