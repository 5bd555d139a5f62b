"""Hugging Face hub ids ("Qwen/Qwen2.5-0.5B-Instruct") -> a local snapshot directory.

    path = download_model("Qwen/Qwen2.5-0.5B-Instruct")   # then load_hf_directory(path)

Resolution goes through `huggingface_hub.snapshot_download`, so users' habits
hold: the cache (`HF_HOME`, `HF_HUB_CACHE`), the token (`HF_TOKEN` or the
login stored by `hf auth login`), offline mode (`HF_HUB_OFFLINE=1`: the cache
only, no request at all). Only what qmotto reads is downloaded: the config,
the tokenizer files and the safetensors weights (`ALLOW_PATTERNS`), never
PyTorch pickles, GGUF or ONNX copies. A revision may follow the id:
"owner/name@main", "owner/name@v1.0" or "owner/name@<commit>".
"""

from __future__ import annotations

import os
import re

from qmotto.models.loading import _common

# The files qmotto reads from a repository, as `snapshot_download` patterns.
ALLOW_PATTERNS = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors.index.json",
    "*.safetensors",
)
# A name as the hub allows it (huggingface_hub.utils.validate_repo_id): 1-96
# of letters, digits, "_", "-", "."; starting and ending with a letter, digit
# or "_"; no "--" or ".."; not ending in ".git".
_NAME = r"(?![^/@]*(?:--|\.\.))(?![^/@]*\.git(?:$|[/@]))[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,94}[A-Za-z0-9_])?"
# A git branch, tag ("v1.0", "refs/pr/1") or commit after "@".
_REVISION = r"(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_.\-/]*"
_REPO_ID = re.compile(rf"(?P<owner>{_NAME})/(?P<name>{_NAME})(?:@(?P<revision>{_REVISION}))?", re.ASCII)
# Names that read as local files qmotto loads rather than as repositories: a
# missing "models/x.gguf" is reported by `load_model` as a missing file.
_FILE_SUFFIXES = (".gguf",)
# Weight files of other formats, named when a repository has no safetensors.
_OTHER_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".msgpack")
# huggingface_hub's truthy spellings of a boolean environment variable.
_TRUE = ("1", "ON", "YES", "TRUE")


def _parse(text: str) -> re.Match | None:
  return _REPO_ID.fullmatch(text) if isinstance(text, str) else None


def looks_like_repo_id(text: str) -> bool:
  """Whether `text` reads as a hub id "owner/name[@revision]" and names no local path.

  Exactly one "/" (before any "@"), the characters the hub allows in names,
  and nothing on disk at `text`: an existing "a/b" directory is a path, and
  "/abs/path", "./x", "a/b/c" or "model-name" are never hub ids. Names ending
  in ".gguf" are left to the file loaders. No network, no huggingface_hub
  import: `load_model` can ask this of any string.

  Args:
    text: what the user passed as the model.

  Returns:
    True when `text` should be resolved on the hub (`download_model`).
  """
  match = _parse(text)
  if match is None or match["name"].lower().endswith(_FILE_SUFFIXES):
    return False
  return not os.path.exists(text)


def _cache_dir() -> str:
  """The hub cache directory, derived from the environment as huggingface_hub does, but now.

  huggingface_hub reads HF_HOME / HF_HUB_CACHE once, when it is first
  imported (`huggingface_hub.constants.HF_HUB_CACHE`), and `snapshot_download`
  falls back on that frozen value. A variable set afterwards (a notebook
  cell, `os.environ[...]` in a script that imported transformers first, a
  test's monkeypatch) would be silently ignored; so `download_model` passes
  this directory as `cache_dir` explicitly. Same precedence as
  huggingface_hub: HF_HUB_CACHE, then the legacy HUGGINGFACE_HUB_CACHE, then
  HF_HOME/hub, then $XDG_CACHE_HOME/huggingface/hub, then
  ~/.cache/huggingface/hub.

  Returns:
    The directory (it need not exist yet).
  """
  env = os.environ
  cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
  if not cache:
    home = env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    cache = os.path.join(os.path.expandvars(os.path.expanduser(home)), "hub")
  return os.path.expandvars(os.path.expanduser(cache))


def _offline(constants=None) -> bool:
  """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is on now, or was when huggingface_hub was imported.

  huggingface_hub also freezes offline mode at import
  (`huggingface_hub.constants.HF_HUB_OFFLINE`); its HTTP layer then refuses
  every request. Reading the variable now as well makes `HF_HUB_OFFLINE=1`
  set after that import take effect: `download_model` passes
  `local_files_only=True`, and `snapshot_download` then makes no request.

  Args:
    constants: `huggingface_hub.constants`, to consult its import-time value
      too (None: the environment only).
  """
  env = os.environ
  if (env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE") or "").upper() in _TRUE:
    return True
  is_offline = getattr(constants, "is_offline_mode", None)
  return bool(is_offline() if callable(is_offline) else getattr(constants, "HF_HUB_OFFLINE", False))


def _one_line(error: BaseException | None) -> str:
  """`error` as "Type: first line of its message", for a one-line message."""
  if error is None:
    return "unknown error"
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _cached_revisions(cache_dir: str, repo_id: str) -> list[str]:
  """The branches and tags of `repo_id` in the cache (its refs), sorted."""
  refs = os.path.join(cache_dir, "models--" + repo_id.replace("/", "--"), "refs")
  found = []
  for root, _, files in os.walk(refs):
    found += [os.path.relpath(os.path.join(root, f), refs).replace(os.sep, "/") for f in files]
  return sorted(found)


def download_model(repo_id: str, *, revision: str | None = None) -> str:
  """The local snapshot directory of a hub model, downloaded into the cache if needed.

  Only `ALLOW_PATTERNS` are fetched (config, tokenizer, safetensors); a
  snapshot already in the cache is reused without downloading again. The
  cache, token and offline mode are huggingface_hub's, read from the
  environment at this call (see `_cache_dir`, `_offline`); the token
  (HF_TOKEN, else the stored login) is left to huggingface_hub.

  Args:
    repo_id: "owner/name", optionally "owner/name@revision".
    revision: a branch, tag or commit (default: the id's "@...", else "main").

  Returns:
    The snapshot directory: config.json, tokenizer files, *.safetensors.

  Raises:
    ValueError: naming the repository (and the revision): not a hub id; the
      repository does not exist, or is private or gated and no token gives
      access; the revision does not exist; offline mode with the repository
      (or revision) not in the cache; an incomplete cached snapshot; a
      network or hub failure; a repository without config.json or without
      safetensors weights.
    ImportError: huggingface_hub is not installed.
  """
  match = _parse(repo_id)
  if match is None:
    raise ValueError(f"{repo_id!r} is not a Hugging Face hub id ('owner/name' or 'owner/name@revision').")
  repo_id = f"{match['owner']}/{match['name']}"
  if match["revision"] is not None:
    if revision is not None and revision != match["revision"]:
      raise ValueError(
          f"hub model {repo_id}: two revisions given, {match['revision']!r} in the id and revision={revision!r}."
      )
    revision = match["revision"]
  hf_hub = _common.require("huggingface_hub", "huggingface_hub", "Loading a model by its hub id")
  # Submodules, imported by name: huggingface_hub loads its attributes lazily.
  from huggingface_hub import constants  # pylint: disable=g-import-not-at-top
  from huggingface_hub import errors  # pylint: disable=g-import-not-at-top

  cache_dir, offline = _cache_dir(), _offline(constants)
  where = repo_id + (f" at revision {revision!r}" if revision else "")
  token_hint = "a token may be needed: set HF_TOKEN or run `hf auth login`"
  try:
    # local_files_only=offline: with HF_HUB_OFFLINE=1 not a single request is
    # tried, the snapshot comes from the cache or not at all.
    path = hf_hub.snapshot_download(
        repo_id,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=offline,
        allow_patterns=list(ALLOW_PATTERNS),
    )
  except errors.GatedRepoError:
    raise ValueError(
        f"hub model {repo_id} is gated: accept its terms on https://huggingface.co/{repo_id}, and {token_hint}."
    ) from None
  except errors.RepositoryNotFoundError:
    raise ValueError(
        f"hub model {repo_id} not found on the Hugging Face hub (if it is private or gated, {token_hint})."
    ) from None
  except errors.RevisionNotFoundError:
    raise ValueError(f"hub model {repo_id} has no revision {revision!r} on the Hugging Face hub.") from None
  except errors.LocalEntryNotFoundError as e:
    incomplete = getattr(errors, "IncompleteSnapshotError", ())
    if incomplete and isinstance(e, incomplete):
      missing = re.search(r"\d+ file\(s\) are missing \(.*?\)", str(e))
      raise ValueError(
          f"hub model {where}: the cached snapshot at {e.snapshot_path} is incomplete and cannot be "
          f"completed{' (HF_HUB_OFFLINE=1)' if offline else f' ({_one_line(e.__cause__)})'}: "
          f"{missing.group(0) if missing else str(e).strip().splitlines()[0]}."
      ) from None
    cached = _cached_revisions(cache_dir, repo_id)
    known = f" (cached revisions: {', '.join(cached)})" if cached and revision else ""
    if offline or isinstance(e.__cause__, errors.OfflineModeIsEnabled):
      raise ValueError(
          f"hub model {where} is not in the Hugging Face cache at {cache_dir}, and HF_HUB_OFFLINE=1 "
          f"forbids downloading it{known}; download it once online, or unset HF_HUB_OFFLINE."
      ) from None
    raise ValueError(
        f"hub model {where}: the Hugging Face hub cannot be reached ({_one_line(e.__cause__)}) and it is "
        f"not in the cache at {cache_dir}{known}."
    ) from e
  except errors.HfHubHTTPError as e:
    status = getattr(getattr(e, "response", None), "status_code", None)
    if status in (401, 403):
      raise ValueError(f"hub model {where}: access denied (HTTP {status}); {token_hint}.") from e
    raise ValueError(f"hub model {where}: the Hugging Face hub request failed ({_one_line(e)}).") from e
  except Exception as e:  # pylint: disable=broad-except
    # Connection, proxy and timeout errors of huggingface_hub's HTTP client
    # (not OSErrors), a full disk, an unwritable cache: all one-line ValueErrors.
    raise ValueError(f"hub model {where}: download failed ({_one_line(e)}).") from e
  # A repository with none of the allowed files gives a snapshot path that was never created.
  names = os.listdir(path) if os.path.isdir(path) else []
  if "config.json" not in names:
    raise ValueError(f"hub model {where} has no config.json (not a transformers model repository).")
  if not any(n.endswith(".safetensors") for n in names):
    others = sorted(n for n in names if n.lower().endswith(_OTHER_WEIGHTS))
    found = f" (found {', '.join(others)})" if others else ""
    raise ValueError(
        f"hub model {where} has no *.safetensors weights; only safetensors is supported, not PyTorch "
        f".bin pickles or other formats{found}."
    )
  return path
