"""The model runners' sampling: resumable, in chunks of problems, one shape per call.

`sample_all(config, s)` draws, for every sampler, R independent groups of n
samples per problem with `qmotto.generate` (and separate groups of size k
where a sampler needs them, see `run_config.group_sizes`), scores each
completion (`scoring.Scorer`) and keeps its correctness, answer hash,
length, whether it stopped, and its mean token log-probability
(`metrics.mean_token_logprob`, the best-of-n score). The pass@k runner
(`passk`) and the test-time-scaling runner (`tts`) both sample through it;
their configs share the fields it reads.

Samples. Group g of a sampler is randomized by fold_in(stream, g) with the
sampler's stream of `streams` and g = problem.index * R + r for replication
r. So the same config gives the same samples, and adding a sampler leaves
the others' samples unchanged. Every call of `generate` has one shape
(problems_per_call * R prompts of the padded length Lp, computed once over
all problems): one compilation per sampler and group size.

Resuming. After each chunk of problems, the chunk's correctness, answer
hashes and completion lengths are saved atomically under
<workdir>/<task>_<model>_<fingerprint>/. The fingerprint hashes everything
the saved arrays depend on (`sample_spec`: model parameters, the encoded
prompts and answers, sampling and scoring settings, chunk shape), so a
changed config never reuses stale chunks. A rerun skips the chunks already
saved and gives exactly the result of an uninterrupted run. Fields that only
affect the analysis (ks, num_resamples, ...) can change freely between
reruns.

Code version. Each chunk also records the version of the code that made it
(`code_version`: the qmotto version, a hash of the source of the modules
that draw, decode and score samples, CODE_SOURCES, and the versions of the
libraries in CODE_LIBRARIES). A chunk made by other code, or one that records
none (made before versions were recorded), is not reused: it is sampled
again and overwritten, with a warning in the log. Comments and docstrings are
left out of the hash, so editing them keeps the chunks.

One run at a time. A run holds `run_lock` (a lock file in config.workdir
per task and model, `qmotto.utils.locks`; `runner` names the runner in the
message another run gets) while it samples: a second run of
the same task and model on the same workdir is refused at once, naming the
first; other tasks and models may share the workdir. Under the lock, the
temporary files `.tmp-*` that a killed run left in its chunk directories are
removed.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import glob
import hashlib
import importlib.metadata
import json
import os
import re
import time
from typing import Callable, Iterator

import jax
import numpy as np
from absl import logging

from qmotto import decode
from qmotto import metrics
from qmotto import sampling
from qmotto.evals import run_config
from qmotto.evals import run_setup
from qmotto.evals import scoring
from qmotto.evals import streams
from qmotto.models import llama
from qmotto.tasks import prompting
from qmotto.utils import files
from qmotto.utils import locks
from qmotto.utils import progress

# Bumped when the chunk files change: older chunks then land in another directory.
# Format 2 added mean_logprob.
CHUNK_FORMAT = 2
# The arrays of a chunk file, each [c, R, size] for c problems.
CHUNK_KEYS = ("correct", "answered", "answer_hash", "lengths", "stopped", "mean_logprob")
# The code a chunk's contents depend on beyond the config and the model (paths
# under qmotto/): the point sets, the sampling step, the decode loops, the
# model and its tokenizers, the tasks (prompts, completions, scoring), this
# runner's sampling and scoring, and the mean token log-probability
# (metrics/strategies.py). `code_version` hashes them.
CODE_SOURCES = (
    "qmc", "sampling", "decode", "models", "tasks", "evals/chunks.py", "evals/scoring.py", "evals/streams.py",
    "metrics/strategies.py",
)
# Libraries whose version changes the numbers or the scoring.
CODE_LIBRARIES = ("jax", "jaxlib", "flax", "numpy", "reasoning_gym")


def _chunk_size(config) -> int:
  """Problems per generate call: problems_per_call, at most num_problems."""
  return min(int(config.problems_per_call), int(config.num_problems))


def _transform_kwargs(config) -> dict:
  return dict(
      temperature=float(config.temperature),
      top_k=int(config.top_k) or None,
      top_p=None if config.top_p >= 1 else float(config.top_p),
      min_p=float(config.min_p) or None,
  )


def _hash_bytes(*parts: bytes) -> str:
  h = hashlib.blake2b(digest_size=16)
  for part in parts:
    h.update(len(part).to_bytes(8, "little"))
    h.update(part)
  return h.hexdigest()


def _without_docstrings(tree: ast.AST) -> ast.AST:
  for node in ast.walk(tree):
    body = getattr(node, "body", None)
    if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
      node.body = body[1:] or [ast.Pass()]
  return tree


@functools.cache
def code_version() -> str:
  """The version of the code that makes and scores samples: "<qmotto version>+<hash>".

  The hash covers the source of CODE_SOURCES (its syntax tree without
  comments and docstrings, so only a change of code changes it) and the
  versions of CODE_LIBRARIES. Computed once per process, at the first call
  (a run calls it before sampling), so it describes the code the run uses.
  """
  import qmotto  # pylint: disable=g-import-not-at-top (the whole package: its version and folder)

  root = os.path.dirname(os.path.abspath(qmotto.__file__))
  paths = []
  for source in CODE_SOURCES:
    path = os.path.join(root, source)
    paths += sorted(glob.glob(os.path.join(path, "**", "*.py"), recursive=True)) if os.path.isdir(path) else [path]
  parts = []
  for path in paths:
    with open(path, encoding="utf-8") as f:
      tree = _without_docstrings(ast.parse(f.read(), filename=path))
    parts += [os.path.relpath(path, root).encode(), ast.dump(tree).encode()]
  for name in CODE_LIBRARIES:
    try:
      version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      version = "absent"
    parts.append(f"{name}=={version}".encode())
  return f"{qmotto.__version__}+{_hash_bytes(*parts)[:16]}"


def run_label(s: run_setup.Setup) -> str:
  """The run's label "<task>_<model>": names its result file, its chunk directories' prefix and its lock."""
  return f"{s.task.name}_{s.model_name}"


@contextlib.contextmanager
def run_lock(config, s: run_setup.Setup, *, runner: str = "pass@k") -> Iterator[locks.DirectoryLock]:
  """Holds the lock of this task and model in config.workdir; removes the stale `.tmp-*` of its chunks.

  Args:
    config: the run config (workdir).
    s: from `run_setup.setup`.
    runner: the runner's name, shown to a second run that finds the lock.

  Raises:
    qmotto.utils.locks.DirectoryInUse (a ValueError): another run of this
      task and model holds config.workdir; the message names it.
  """
  key = run_label(s)
  with locks.DirectoryLock(config.workdir, name="config.workdir", run=f"{runner} {key}",
                           lock_file=f".qmotto-{key}.lock") as lock:
    # The chunk directories of this key: <key>_<16 hex digits> (resume_directory).
    pattern = re.compile(re.escape(key) + "_[0-9a-f]{16}")
    for directory in glob.glob(os.path.join(glob.escape(os.fspath(config.workdir)), glob.escape(key) + "_*")):
      if pattern.fullmatch(os.path.basename(directory)):
        files.remove_stale_temporaries(directory)
    yield lock


def model_fingerprint(model: llama.Model) -> str:
  """A hash of the model's config and every parameter's bytes."""
  leaves = jax.tree_util.tree_leaves_with_path(model.params)
  parts = [json.dumps(dataclasses.asdict(model.config), sort_keys=True).encode()]
  for path, leaf in leaves:
    array = np.asarray(leaf)
    parts += [jax.tree_util.keystr(path).encode(), str(array.dtype).encode(), array.tobytes()]
  return _hash_bytes(*parts)


def sample_spec(config, s: run_setup.Setup) -> dict:
  """What the saved chunks depend on; its hash names the resume directory."""
  problems = [[str(p.index), str(p.question), str(p.answer)] for p in s.problems]
  return dict(
      format=CHUNK_FORMAT,
      model=model_fingerprint(s.model),
      task=run_setup.task_spec(s.task),
      style=s.style,
      problems=_hash_bytes(json.dumps(problems).encode()),
      prompts=_hash_bytes(s.prompts.tobytes(), s.prompt_lengths.tobytes(), str(s.prompts.shape).encode()),
      max_new_tokens=s.max_new_tokens,
      sampling=_transform_kwargs(config),
      seed=int(config.seed),
      group_size=int(config.group_size),
      problems_per_call=_chunk_size(config),
      eos_id=int(s.tokenizer.eos_id),
      stop_ids=[int(i) for i in s.tokenizer.stop_ids],
      correct_threshold=float(config.correct_threshold),
  )


def resume_directory(config, s: run_setup.Setup) -> str:
  """<workdir>/<task>_<model>_<fingerprint>: where this run's chunks live (made, with spec.json)."""
  spec = sample_spec(config, s)
  fingerprint = _hash_bytes(json.dumps(spec, sort_keys=True).encode())[:16]
  directory = os.path.join(config.workdir, f"{run_label(s)}_{fingerprint}")
  os.makedirs(directory, exist_ok=True)
  spec_path = os.path.join(directory, "spec.json")
  if not os.path.exists(spec_path):
    files.write_json(spec, spec_path)
  return directory


def chunk_path(directory: str, sampler: str, size: int, reps: int, chunk: int) -> str:
  """The file of chunk `chunk` of `sampler`'s groups of `size` (R = reps)."""
  return os.path.join(directory, f"{sampler}_n{size}_r{reps}_{chunk:05d}.npz")


def load_chunk(path: str, shape: tuple[int, int, int], *, code: str | None = None) -> dict | None:
  """A saved chunk's arrays (CHUNK_KEYS, each of `shape`) and "examples"; None if absent or unusable.

  Args:
    path: the chunk file (`chunk_path`).
    shape: (c, R, size), the shape each array must have.
    code: the code version the chunk must record (default: this code's,
      `code_version()`). A chunk of other code, or one that records none, is
      refused (None, with a warning): the caller samples it again.
  """
  if not os.path.exists(path):
    return None
  code = code_version() if code is None else code
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {name: np.asarray(data[name]) for name in CHUNK_KEYS}
      examples = [str(x) for x in data["examples"]] if "examples" in data else []
      saved_code = str(data["code_version"]) if "code_version" in data else None
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("%s: unreadable (%s); sampling this chunk again.", path, e)
    return None
  if saved_code != code:
    made_by = f"code version {saved_code}" if saved_code else "code that recorded no version"
    logging.warning("%s: made by %s, not this code's %s; sampling this chunk again.", path, made_by, code)
    return None
  if any(a.shape != shape for a in arrays.values()):
    logging.warning("%s: shapes differ from %s; sampling this chunk again.", path, shape)
    return None
  arrays["examples"] = examples
  return arrays


def save_chunk(path: str, arrays: dict, *, code: str | None = None) -> None:
  """Writes a chunk's arrays to `path` atomically (an interrupted write leaves no chunk).

  The file records `code` (default: this code's `code_version()`), which
  `load_chunk` checks.
  """
  code = code_version() if code is None else code
  files.atomic_write(path, lambda f: np.savez_compressed(f, **arrays, code_version=np.array(code)), mode="wb")


def _stop_lengths(tokens: np.ndarray, lengths: np.ndarray, stop_ids) -> tuple[np.ndarray, np.ndarray]:
  """(lengths cut at the first stop id, whether the completion stopped), tokens [..., N]."""
  inside = np.arange(tokens.shape[-1]) < lengths[..., None]
  stops = np.isin(tokens, np.asarray(list(stop_ids))) & inside
  stopped = stops.any(-1)
  return np.where(stopped, stops.argmax(-1) + 1, lengths).astype(np.int32), stopped


def sample_chunk(
    s: run_setup.Setup,
    config,
    options: sampling.SamplingOptions,
    size: int,
    reps: int,
    key: jax.Array,
    rows: np.ndarray,
    scorer: scoring.Scorer,
) -> dict:
  """Samples and scores one chunk: problems `rows` (indices into s.problems), R groups each.

  Args:
    s: from `run_setup.setup`.
    config: the run config.
    options: the sampler and logit transform of every token.
    size: the group size.
    reps: R, groups per problem.
    key: the sampler's stream (and group size's, for separate groups).
    rows: int[c] problem rows, at most problems_per_call.
    scorer: scores and extracts answers.

  Returns:
    The chunk's arrays (CHUNK_KEYS), each [c, R, size], and "examples": str
    [<= 8], completions of the first group. mean_logprob is float64, the
    mean log-probability of each completion's tokens up to its stop.
  """
  chunk = _chunk_size(config)
  padded = np.concatenate([rows, np.full(chunk - len(rows), rows[-1])])  # one shape for every call.
  prompt_rows = np.repeat(padded, reps)  # [chunk * R]: group r of problem i at i * R + r.
  indices = np.array([s.problems[i].index for i in padded], np.int64)
  group_ids = (np.repeat(indices, reps) * reps + np.tile(np.arange(reps), chunk)).astype(np.uint32)
  out = decode.generate(
      key,
      s.model,
      s.prompts[prompt_rows],
      s.prompt_lengths[prompt_rows],
      num_samples=size,
      max_new_tokens=s.max_new_tokens,
      sampling=options,
      eos_id=int(s.tokenizer.eos_id),
      pad_id=int(s.tokenizer.pad_id if s.tokenizer.pad_id is not None else s.tokenizer.eos_id),
      group_ids=group_ids,
  )
  shape = (len(rows), reps, size)
  tokens = np.asarray(out.tokens).reshape(chunk, reps, size, -1)[: len(rows)]  # [c, R, size, N]
  lengths, stopped = _stop_lengths(tokens, np.asarray(out.lengths).reshape(chunk, reps, size)[: len(rows)],
                                   s.tokenizer.stop_ids)
  logprobs = np.asarray(out.logprobs).reshape(chunk, reps, size, -1)[: len(rows)]
  mean_logprob = metrics.mean_token_logprob(logprobs, lengths)
  texts = prompting.decode_completions(s.tokenizer, tokens, lengths)
  correct = np.zeros(shape, bool)
  answered = np.zeros(shape, bool)
  hashes = np.zeros(shape, np.int64)
  for i, row in enumerate(rows):
    problem = s.problems[row]
    for r in range(reps):
      for j in range(size):
        ok, answer = scorer(problem, texts[i][r][j])
        correct[i, r, j] = ok
        if answer is not None:
          answered[i, r, j] = True
          hashes[i, r, j] = scoring.answer_hash(answer)
  examples = np.array(texts[0][0][: min(size, 8)], dtype=str)
  return dict(correct=correct, answered=answered, answer_hash=hashes, lengths=lengths, stopped=stopped,
              mean_logprob=mean_logprob, examples=examples)


def sample_all(config, s: run_setup.Setup, *, on_chunk: Callable[[str, int, int], None] | None = None) -> dict:
  """Samples (or loads saved chunks of) every sampler and group size.

  Args:
    config: the run config.
    s: from `run_setup.setup`.
    on_chunk: called as on_chunk(sampler, size, chunk_index) after each chunk
      is saved (a hook for progress reports and for tests that interrupt a run).

  Returns:
    {"directory": the resume directory, "samplers": sampler -> {"groups":
    size -> dict of arrays [P, R, size] (correct, answered, answer_hash,
    lengths, stopped, mean_logprob) plus "examples" (completions of the first group),
    "stats": seconds, sampled_chunks, loaded_chunks}}.
  """
  directory = resume_directory(config, s)
  code = code_version()
  num = len(s.problems)
  chunk = _chunk_size(config)
  starts = list(range(0, num, chunk))
  streams_to_draw = [
      (name, size) for name in config.samplers for size in run_config.group_sizes(name, config.group_size, config.ks)
  ]
  key = jax.random.key(int(config.seed))
  scorer = scoring.Scorer(s.task, s.style, float(config.correct_threshold))
  # One SamplingOptions per sampler: each generate call of a sampler reuses it (and its compilation).
  options = {name: sampling.SamplingOptions.create(name, **_transform_kwargs(config)) for name in config.samplers}
  out: dict = {}
  bar = progress.progress_bar(  # config.progress: a bar when stderr is a terminal.
      "auto" if config.progress else "off", total=len(streams_to_draw) * len(starts), initial=0,
      desc=f"{s.task.name}/{s.model_name}", unit="chunk",
  )
  try:
    for name, size in streams_to_draw:
      reps = run_config.replications(config, name)
      # Each sampler has its own stream; separate groups of size k have their own too.
      stream = jax.random.fold_in(key, streams.stream_id(name))
      if size != config.group_size:
        stream = jax.random.fold_in(stream, size)
      entry = out.setdefault(name, dict(groups={}, stats=dict(seconds=0.0, sampled_chunks=0, loaded_chunks=0)))
      stats = entry["stats"]
      parts = []
      for j, start in enumerate(starts):
        rows = np.arange(start, min(start + chunk, num))
        path = chunk_path(directory, name, size, reps, j)
        arrays = load_chunk(path, (len(rows), reps, size), code=code) if config.resume else None
        if arrays is None:
          began = time.time()
          arrays = sample_chunk(s, config, options[name], size, reps, stream, rows, scorer)
          save_chunk(path, arrays, code=code)
          stats["seconds"] += time.time() - began
          stats["sampled_chunks"] += 1
          arrays["examples"] = [str(x) for x in arrays["examples"]]
        else:
          stats["loaded_chunks"] += 1
        parts.append(arrays)
        bar.update(1)
        if on_chunk is not None:
          on_chunk(name, size, j)
      entry["groups"][size] = {k: np.concatenate([p[k] for p in parts]) for k in CHUNK_KEYS}
      entry["groups"][size]["examples"] = parts[0]["examples"]
      logging.info("%s n=%d: %d chunks sampled, %d loaded", name, size, stats["sampled_chunks"],
                   stats["loaded_chunks"])
  finally:
    bar.close()
  return dict(directory=directory, samplers=out)
