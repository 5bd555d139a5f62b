"""Hub ids through huggingface_hub, with no network at all.

A temporary HF_HOME holds a cache laid out as huggingface_hub writes it
(blobs, snapshots of relative links, refs), HF_HUB_OFFLINE=1 in every test,
and sockets refuse to connect; where the online paths matter (the patterns
requested, the errors of the hub), `huggingface_hub.snapshot_download` is
replaced by a stand-in.
"""

import hashlib
import json
import os
import socket

import numpy as np
import pytest

# Imported before any test sets HF_HOME / HF_HUB_OFFLINE, as in a notebook:
# its constants keep the values of import time, and the tests show that
# download_model follows the environment of the call anyway.
huggingface_hub = pytest.importorskip("huggingface_hub")
import huggingface_hub.constants  # noqa: E402  (a lazy attribute until imported)
from huggingface_hub import errors as hf_errors  # noqa: E402

from qmotto.models import forward_logits  # noqa: E402
from qmotto.models.loading import hub  # noqa: E402
from qmotto.models.loading import load_config  # noqa: E402
from qmotto.models.loading import load_hf_directory  # noqa: E402
from qmotto.models.loading import load_model  # noqa: E402

REPO = "qmotto-test/tiny-llama"
COMMIT = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
  """HF_HUB_OFFLINE=1, an empty HF_HOME, no token, and sockets that refuse to connect."""

  def refuse(*args, **kwargs):
    raise AssertionError(f"network access attempted: {args}")

  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket.socket, "connect_ex", refuse)
  monkeypatch.setattr(socket, "getaddrinfo", refuse)
  monkeypatch.setattr(socket, "create_connection", refuse)
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
  monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
  for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
    monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
  """A random transformers LlamaForCausalLM saved as safetensors: its directory."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  config = transformers.LlamaConfig(
      vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
      num_key_value_heads=2, max_position_embeddings=64,
  )
  torch.manual_seed(0)
  path = str(tmp_path_factory.mktemp("tiny_llama"))
  transformers.LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
  assert os.path.isfile(os.path.join(path, "model.safetensors"))
  return path


def _blob_name(name: str, data: bytes) -> str:
  """The blob's name in the cache: sha256 for LFS files (the weights), the git blob sha1 otherwise."""
  if name.endswith((".safetensors", ".bin")):
    return hashlib.sha256(data).hexdigest()
  return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _cache_repo(cache_dir, repo_id, files, *, commit=COMMIT, ref="main"):
  """Lays out {name: bytes} as huggingface_hub caches a download; returns the snapshot directory."""
  repo = os.path.join(cache_dir, "models--" + repo_id.replace("/", "--"))
  snapshot = os.path.join(repo, "snapshots", commit)
  os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
  os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
  os.makedirs(snapshot, exist_ok=True)
  with open(os.path.join(repo, "refs", ref), "w") as f:
    f.write(commit)  # no newline, as huggingface_hub writes it
  for name, data in files.items():
    blob = os.path.join(repo, "blobs", _blob_name(name, data))
    with open(blob, "wb") as f:
      f.write(data)
    os.symlink(os.path.relpath(blob, snapshot), os.path.join(snapshot, name))
  return snapshot


def _files(directory):
  files = {}
  for name in os.listdir(directory):
    with open(os.path.join(directory, name), "rb") as f:
      files[name] = f.read()
  return files


def _hf_home_cache():
  return os.path.join(os.environ["HF_HOME"], "hub")


@pytest.fixture
def cached_llama(tiny_llama):
  """The tiny checkpoint in the HF_HOME cache as REPO, with a stray PyTorch pickle beside it."""
  files = {**_files(tiny_llama), "pytorch_model.bin": b"a pickle qmotto must never need"}
  return _cache_repo(_hf_home_cache(), REPO, files)


def _logits(model):
  return np.asarray(forward_logits(model, np.array([[1, 7, 30, 63, 2]])))


def test_a_cached_repository_resolves_to_its_snapshot_and_loads_like_the_saved_directory(tiny_llama, cached_llama):
  path = hub.download_model(REPO)
  assert os.path.realpath(path) == os.path.realpath(cached_llama)
  assert os.path.islink(os.path.join(path, "model.safetensors"))
  model, _ = load_hf_directory(path)
  reference, _ = load_hf_directory(tiny_llama)
  np.testing.assert_array_equal(_logits(model), _logits(reference))
  # The same snapshot by branch, by commit, and as "owner/name@revision".
  assert hub.download_model(REPO, revision="main") == path
  assert hub.download_model(REPO, revision=COMMIT) == path
  assert hub.download_model(f"{REPO}@{COMMIT}") == path


def test_load_model_takes_a_hub_id(tiny_llama, cached_llama):
  model, _ = load_model(REPO)
  reference, _ = load_hf_directory(tiny_llama)
  np.testing.assert_array_equal(_logits(model), _logits(reference))
  assert load_model(REPO + "@main")[0].config == model.config == load_config(REPO)


def test_load_model_brings_the_tokenizer(tmp_path):
  from . import helpers  # pylint: disable=g-import-not-at-top

  source = helpers.save_tiny_hf_checkpoint(tmp_path / "tiny_qwen2")
  _cache_repo(_hf_home_cache(), "qmotto-test/tiny-qwen2", _files(source))
  model, tokenizer = load_model("qmotto-test/tiny-qwen2")
  reference, _ = load_hf_directory(source)
  tokens = np.array([[5, 9, 200, 3]])
  np.testing.assert_array_equal(forward_logits(model, tokens), forward_logits(reference, tokens))
  assert tokenizer is not None and tokenizer.eos_id == 1


def test_hf_hub_cache_is_read_at_call_time(tiny_llama, tmp_path, monkeypatch):
  cache = str(tmp_path / "elsewhere")
  snapshot = _cache_repo(cache, REPO, _files(tiny_llama))
  monkeypatch.setenv("HF_HUB_CACHE", cache)  # beats HF_HOME, as in huggingface_hub
  assert os.path.realpath(hub.download_model(REPO)) == os.path.realpath(snapshot)
  assert huggingface_hub.constants.HF_HUB_CACHE != cache  # frozen at import: download_model passes cache_dir


def test_offline_and_not_cached_names_the_repository_and_the_cache():
  with pytest.raises(ValueError, match=r"^hub model qmotto-test/missing is not in the Hugging Face cache at (.+) "
                     r"and HF_HUB_OFFLINE=1") as info:
    hub.download_model("qmotto-test/missing")
  assert _hf_home_cache() in str(info.value) and "\n" not in str(info.value)
  with pytest.raises(ValueError, match=r"hub model qmotto-test/missing is not in the Hugging Face cache"):
    load_model("qmotto-test/missing")


def test_a_revision_that_does_not_exist(cached_llama, monkeypatch):
  with pytest.raises(ValueError, match=r"hub model qmotto-test/tiny-llama at revision 'v9' is not in the Hugging "
                     r"Face cache .* \(cached revisions: main\)"):
    hub.download_model(REPO, revision="v9")
  with pytest.raises(ValueError, match=r"at revision 'v9' is not in the Hugging Face cache"):
    hub.download_model(REPO + "@v9")
  with pytest.raises(ValueError, match=r"two revisions given, 'v9' in the id and revision='main'"):
    hub.download_model(REPO + "@v9", revision="main")
  # Online, the hub's own answer (huggingface_hub raises RevisionNotFoundError).
  _replace_snapshot_download(monkeypatch, raises=_http_error(hf_errors.RevisionNotFoundError, 404))
  with pytest.raises(ValueError, match=r"^hub model qmotto-test/tiny-llama has no revision 'v9' on the Hugging Face hub"):
    hub.download_model(REPO, revision="v9")


def test_a_repository_without_safetensors_is_refused(tiny_llama):
  files = {"config.json": _files(tiny_llama)["config.json"], "pytorch_model.bin": b"pickle"}
  _cache_repo(_hf_home_cache(), "qmotto-test/pickles", files)
  with pytest.raises(ValueError, match=r"^hub model qmotto-test/pickles has no \*\.safetensors weights; only "
                     r"safetensors is supported.*\(found pytorch_model\.bin\)"):
    hub.download_model("qmotto-test/pickles")
  _cache_repo(_hf_home_cache(), "qmotto-test/no-config", {"model.safetensors": _files(tiny_llama)["model.safetensors"]})
  with pytest.raises(ValueError, match=r"^hub model qmotto-test/no-config has no config\.json"):
    hub.download_model("qmotto-test/no-config")


def _write_tree_listing(cache_dir, repo_id, names, commit=COMMIT):
  """The listing of the repository's files at `commit` that snapshot_download caches (trees/<commit>.json)."""
  trees = os.path.join(cache_dir, "models--" + repo_id.replace("/", "--"), "trees")
  os.makedirs(trees, exist_ok=True)
  with open(os.path.join(trees, commit + ".json"), "w") as f:
    json.dump({"format_version": 1, "files": {n: {"size": 1, "blob_id": "0" * 40} for n in names}}, f)


def test_a_listed_pytorch_pickle_is_not_needed_but_a_missing_safetensors_file_is(tiny_llama):
  # The repository (per its cached listing) also holds pytorch_model.bin and model.gguf, which the
  # snapshot lacks: not requested, so the snapshot is complete.
  files = _files(tiny_llama)
  _cache_repo(_hf_home_cache(), REPO, files)
  _write_tree_listing(_hf_home_cache(), REPO, [*files, "pytorch_model.bin", "model.gguf", "README.md"])
  assert os.path.isfile(os.path.join(hub.download_model(REPO), "model.safetensors"))
  # A second commit whose snapshot lacks a listed safetensors shard: incomplete, said so.
  other = "f" * 40
  _cache_repo(_hf_home_cache(), REPO, {"config.json": files["config.json"]}, commit=other, ref="v2")
  _write_tree_listing(_hf_home_cache(), REPO, ["config.json", "model.safetensors"], commit=other)
  with pytest.raises(ValueError, match=r"^hub model qmotto-test/tiny-llama at revision 'v2': the cached snapshot at "
                     r".* is incomplete and cannot be completed \(HF_HUB_OFFLINE=1\): .*model\.safetensors") as info:
    hub.download_model(REPO, revision="v2")
  assert "\n" not in str(info.value)


def test_looks_like_repo_id(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "a" / "b").mkdir(parents=True)
  for text in ("Qwen/Qwen2.5-0.5B-Instruct", "google/gemma-3-1b-it@main", "owner/name@refs/pr/1", "a/c"):
    assert hub.looks_like_repo_id(text), text
  for text in ("smollm2-135m-instruct", "/abs/path", "a/b", "a/b/c", "", "a/", "./a", "../x", "owner/na me",
               "owner/name@", "owner/x--y", "owner/x.git", "-owner/x", "models/tiny.gguf", "C:/models"):
    assert not hub.looks_like_repo_id(text), text
  with pytest.raises(ValueError, match=r"^'a/b/c' is not a Hugging Face hub id"):
    hub.download_model("a/b/c")


# Stand-ins for the online paths of snapshot_download.


def _replace_snapshot_download(monkeypatch, *, returns=None, raises=None):
  calls = []

  def snapshot_download(repo_id, **kwargs):
    calls.append((repo_id, kwargs))
    if raises is not None:
      raise raises
    return returns

  monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
  return calls


def _http_error(cls, status):
  httpx = pytest.importorskip("httpx2")
  request = httpx.Request("GET", f"https://huggingface.co/api/models/{REPO}")
  return cls(f"{status} Client Error.\n\nmore lines from the hub", response=httpx.Response(status, request=request))


@pytest.mark.parametrize("env,frozen,offline", [
    ("1", True, True), ("1", False, True), (None, True, True), (None, False, False),
])
def test_only_config_tokenizer_and_safetensors_are_requested(tiny_llama, monkeypatch, tmp_path, env, frozen, offline):
  # Offline mode: HF_HUB_OFFLINE now, or frozen in huggingface_hub.constants at its import.
  # snapshot_download is replaced: even "online", no request can leave.
  if env is None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
  monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", frozen)
  monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
  calls = _replace_snapshot_download(monkeypatch, returns=tiny_llama)
  assert hub.download_model("Qwen/Qwen2.5-0.5B-Instruct@abc123") == tiny_llama
  hub.download_model("Qwen/Qwen2.5-0.5B-Instruct", revision="v1.0")
  (repo_id, kwargs), (_, kwargs2) = calls
  assert repo_id == "Qwen/Qwen2.5-0.5B-Instruct"
  assert kwargs["revision"] == "abc123" and kwargs2["revision"] == "v1.0"
  assert kwargs["cache_dir"] == str(tmp_path / "cache") and kwargs["local_files_only"] is offline
  assert sorted(kwargs["allow_patterns"]) == sorted([
      "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
      "special_tokens_map.json", "model.safetensors.index.json", "*.safetensors",
  ])
  assert "token" not in kwargs  # HF_TOKEN or the stored login: huggingface_hub's own lookup


def _offline_error():
  error = hf_errors.LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder.\nmore")
  error.__cause__ = hf_errors.OfflineModeIsEnabled("offline mode is enabled")
  return error


def _unreachable_error():
  httpx = pytest.importorskip("httpx2")
  error = hf_errors.LocalEntryNotFoundError("Got: ConnectError: [Errno -3] name resolution\nAn error happened")
  error.__cause__ = httpx.ConnectError("[Errno -3] Temporary failure in name resolution")
  return error


@pytest.mark.parametrize("make_error,message", [
    (lambda: _http_error(hf_errors.RepositoryNotFoundError, 401),
     r"hub model qmotto-test/tiny-llama not found on the Hugging Face hub \(if it is private or gated, a token may "
     r"be needed: set HF_TOKEN"),
    (lambda: _http_error(hf_errors.GatedRepoError, 403),
     r"hub model qmotto-test/tiny-llama is gated: accept its terms on https://huggingface.co/qmotto-test/tiny-llama"),
    (lambda: _http_error(hf_errors.HfHubHTTPError, 403), r"hub model qmotto-test/tiny-llama: access denied \(HTTP 403\)"),
    (lambda: _http_error(hf_errors.HfHubHTTPError, 503),
     r"hub model qmotto-test/tiny-llama: the Hugging Face hub request failed \(HfHubHTTPError: 503 Client Error.\)"),
    (_unreachable_error,
     r"hub model qmotto-test/tiny-llama: the Hugging Face hub cannot be reached \(ConnectError: \[Errno -3\] "
     r"Temporary failure in name resolution\) and it is not in the cache at "),
    (_offline_error, r"hub model qmotto-test/tiny-llama is not in the Hugging Face cache at .* and HF_HUB_OFFLINE=1"),
    (lambda: pytest.importorskip("httpx2").ProxyError("407 Proxy Authentication Required"),
     r"hub model qmotto-test/tiny-llama: download failed \(ProxyError: 407 Proxy Authentication Required\)"),
    (lambda: OSError(28, "No space left on device"), r"hub model qmotto-test/tiny-llama: download failed \(OSError: "),
])
def test_hub_errors_become_one_line_value_errors(monkeypatch, make_error, message):
  monkeypatch.delenv("HF_HUB_OFFLINE")  # as online; snapshot_download is replaced, nothing leaves.
  monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
  _replace_snapshot_download(monkeypatch, raises=make_error())
  with pytest.raises(ValueError, match="^" + message) as info:
    hub.download_model(REPO)
  assert "\n" not in str(info.value)


def test_a_repository_with_none_of_the_files(monkeypatch, tmp_path):
  # Online, a repository with only pytorch_model.bin matches no pattern: huggingface_hub
  # returns a snapshot path it never created.
  _replace_snapshot_download(monkeypatch, returns=str(tmp_path / "never_created"))
  with pytest.raises(ValueError, match=r"^hub model qmotto-test/tiny-llama has no config\.json"):
    hub.download_model(REPO)
