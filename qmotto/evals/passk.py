"""The pass@k runner: a language model, a reasoning task, i.i.d. vs coupled samplers.

`run(config)` (fields: configs/passk.py) loads a model (a task model's orbax
checkpoint, "smollm2-135m-instruct", a Hugging Face directory or a .gguf),
encodes `num_problems` test problems of a task (`qmotto.tasks`), and for
every sampler draws R independent groups of n samples per problem with
`qmotto.generate`. Each completion is scored with `task.score_text` and its
answer extracted; then `report.passk_rows` gives, for every sampler and
k, the unbiased pass@k with a bootstrap interval, the per-problem union bound
mean_i min(1, k p_i) (p_i from the i.i.d. samples) and the samples saved vs
i.i.d. with an interval (NaN where the i.i.d. pass@k is 0: any sampler
"reaches" 0 at once, so there is nothing to measure). A completion is
correct when its score reaches config.correct_threshold (1.0, the tasks'
PASS_SCORE). Rows also carry the mean number of distinct answers per group
of k. `save_outputs` writes <output_dir>/<task>_<model>.json and
.png and rebuilds <output_dir>/summary.json (`build_summary`).

Samples. Group g of a sampler is randomized by fold_in(stream, g), where
stream = fold_in(key(seed), stream_id(sampler)) (and fold_in(stream, k) for
the separate groups of size k that a sampler without valid sub-groups of size
k needs, e.g. stratified), and g = problem.index * R + r for replication r.
So the same config gives the same samples, and adding a sampler leaves the
others' samples unchanged. Every call of `generate` has one shape
(problems_per_call * R prompts of the padded length Lp, computed once over
all problems): one compilation per sampler and group size.

Resuming. After each chunk of problems, the chunk's correctness, answer
hashes and completion lengths are saved atomically under
<workdir>/<task>_<model>_<fingerprint>/. The fingerprint hashes everything
the saved arrays depend on (model parameters, the encoded prompts and
answers, sampling and scoring settings, chunk shape), so a changed config
never reuses stale chunks. A rerun skips the chunks already saved and gives
exactly the result of an uninterrupted run. Fields that only affect the
analysis (ks, num_resamples, ...) can change freely between reruns. The
task's scoring code is not hashed: after changing it, rerun with
config.resume=False.
Final files are written atomically at the end: a failed run leaves none.

Distinct answers. For each group of k (the valid sub-groups of size k of a
group of n, or the separate groups of size k), the number of distinct
extracted answers; completions without an extractable answer are not
counted. Averaged over sub-groups, groups and problems.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import numpy as np
from absl import logging

from qmotto import decode
from qmotto.utils import files
from qmotto import metrics
from qmotto.evals import report
from qmotto.tasks import prompting
from qmotto.models import llama
from qmotto.models import loading
from qmotto import sampling
from qmotto.sampling import samplers as samplers_lib

RESULT_KIND = "qmotto.passk"
RESULT_VERSION = 1
CHUNK_FORMAT = 1
STYLES = ("auto",) + prompting.STYLES
BASELINE = "iid"
SUMMARY_NAME = "summary.json"
# Completion lengths above this fraction at max_new_tokens get a warning.
TRUNCATION_WARNING = 0.05
SUMMARY_FIELDS = (
    "task", "model", "style", "sampler", "k", "pass_at_k", "ci_low", "ci_high", "union_bound",
    "samples_saved", "saved_low", "saved_high", "distinct_per_group", "num_problems", "group_size",
    "replications",
)


# --- Shared with qmotto.toy_passk ------------------------------------------------------------


def stream_id(name: str) -> int:
  """A sampler's stream id for `fold_in`: its first 4 name bytes as a little-endian int."""
  return int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "little")


_atomic_write = files.atomic_write
write_json = files.write_json  # shared with toy_passk and the benchmarks


# --- Config checks ---------------------------------------------------------------------------


def _positive_int(config, name: str, minimum: int = 1) -> int:
  value = config[name]
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"config.{name} must be an int >= {minimum}, got {value!r}.")
  return int(value)


def group_sizes(sampler: str, group_size: int, ks: Sequence[int]) -> list[int]:
  """Group sizes to sample for `sampler`: n first, then each k that no group of n serves.

  Raises:
    ValueError: k > n, or a k that is neither a valid sub-group size of a
      group of n nor a group size the sampler can make on its own.
  """
  allowed = metrics.allowed_subgroup_sizes(samplers_lib.get_sampler(sampler), group_size)
  sizes = [group_size]
  for k in ks:
    if k > group_size:
      raise ValueError(
          f"config.ks: k={k} exceeds config.group_size={group_size}; allowed k for sampler "
          f"{sampler!r}: 1..{group_size}."
      )
    if k in allowed:
      continue
    try:
      samplers_lib.get_sampler(sampler).check_group_size(int(k))
    except ValueError as e:
      raise ValueError(
          f"config.ks: k={k} is not allowed for sampler {sampler!r}: it is not a valid sub-group "
          f"size of a group of {group_size} (allowed: {allowed}) and {e}"
      ) from e
    sizes.append(int(k))
  return sizes


def check_config(config) -> None:
  """Checks the fields that need no model or task (fast; raises ValueError)."""
  samplers = tuple(config.samplers)
  unknown = [s for s in samplers if s not in samplers_lib.SAMPLERS]
  if unknown:
    raise ValueError(f"config.samplers: unknown {unknown}; allowed: {sorted(samplers_lib.SAMPLERS)}.")
  if BASELINE not in samplers:
    raise ValueError(
        f"config.samplers must include {BASELINE!r}: it is the baseline of samples saved and gives "
        f"p_i for the union bound; got {list(samplers)}."
    )
  if len(set(samplers)) != len(samplers):
    raise ValueError(f"config.samplers: each sampler once, got {list(samplers)}.")
  if config.style not in STYLES:
    raise ValueError(f"config.style must be one of {STYLES}, got {config.style!r}.")
  for name in ("num_problems", "group_size", "replications", "problems_per_call", "num_resamples"):
    _positive_int(config, name)
  for name in ("start", "iid_replications", "max_new_tokens", "seed", "top_k"):
    _positive_int(config, name, minimum=0)
  ks = list(config.ks)
  if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
    raise ValueError(f"config.ks must be a non-empty list of ints >= 1, got {ks}.")
  if any(b <= a for a, b in zip(ks, ks[1:])):
    raise ValueError(f"config.ks must be strictly increasing, got {ks}.")
  for sampler in samplers:
    try:
      metrics.allowed_subgroup_sizes(samplers_lib.get_sampler(sampler), config.group_size)
    except ValueError as e:
      raise ValueError(f"config.group_size={config.group_size} for sampler {sampler!r}: {e}") from e
    group_sizes(sampler, config.group_size, ks)
  if not np.isfinite(config.temperature) or config.temperature < 0:
    raise ValueError(f"config.temperature must be a finite number >= 0, got {config.temperature!r}.")
  if not 0 < config.top_p <= 1:
    raise ValueError(f"config.top_p must be in (0, 1] (1: off), got {config.top_p!r}.")
  if not 0 <= config.min_p < 1:
    raise ValueError(f"config.min_p must be in [0, 1) (0: off), got {config.min_p!r}.")
  task_options(config)
  check_task_name(config.task)


def check_task_name(name: str) -> None:
  """Raises ValueError unless `name` is "" (the checkpoint's task) or a task of `qmotto.tasks`."""
  if name:
    names = _tasks_module().TASK_NAMES
    if name not in names:
      raise ValueError(f"config.task: unknown task {name!r}; allowed: {sorted(names)}.")


def task_options(config) -> dict:
  """config.task_options as a dict: a JSON object string ("" = none) or a mapping."""
  options = config.task_options
  if isinstance(options, Mapping) or hasattr(options, "to_dict"):
    return dict(options.to_dict() if hasattr(options, "to_dict") else options)
  if not options:
    return {}
  try:
    parsed = json.loads(options)
  except json.JSONDecodeError as e:
    raise ValueError(f"config.task_options must be a JSON object string, got {options!r}: {e}") from e
  if not isinstance(parsed, dict):
    raise ValueError(f"config.task_options must be a JSON object, got {options!r}.")
  return parsed


# --- Model, task, prompts --------------------------------------------------------------------


class Setup(NamedTuple):
  """Everything `run` resolves from the config before sampling."""

  model: llama.Model
  tokenizer: Any
  task: Any
  style: str
  problems: list
  prompts: np.ndarray  # int32[P, Lp]
  prompt_lengths: np.ndarray  # int32[P]
  max_new_tokens: int
  model_name: str
  metadata: dict | None  # the checkpoint's metadata (None for other models)


def model_label(path_or_name: str) -> str:
  """A file-name-safe model label: the name, or the path's base name without extension."""
  text = os.path.basename(os.path.normpath(os.fspath(path_or_name)))
  text = os.path.splitext(text)[0] if text.lower().endswith(".gguf") else text
  return "".join(c if c.isalnum() or c in "-._" else "-" for c in text) or "model"


def load_model(path_or_name: str):
  """(model, tokenizer, metadata): like `qmotto.load_model`, plus an orbax checkpoint's metadata.

  Raises:
    ValueError: naming the path, for anything it cannot load (missing, corrupt,
      foreign or unrecognized checkpoints).
  """
  text = os.fspath(path_or_name)
  if not text:
    raise ValueError("config.model is empty; give a checkpoint directory, a .gguf or a model name.")
  try:
    if os.path.isdir(text) and not os.path.isfile(os.path.join(text, "config.json")):
      if loading.checkpoint_steps(text):
        restored = loading.restore_checkpoint(text)
        tokenizer = loading.tokenizer_from_metadata(restored.metadata, text)
        return restored.model, tokenizer, dict(restored.metadata or {})
    model, tokenizer = loading.load_model(text)
    return model, tokenizer, None
  except ValueError as e:
    raise ValueError(f"config.model={text!r}: {e}") from e
  except Exception as e:  # pylint: disable=broad-except
    # orbax, safetensors and gguf raise their own types on damaged files.
    raise ValueError(f"config.model={text!r}: cannot load ({type(e).__name__}: {e}).") from e


def _tasks_module():
  from qmotto import tasks  # pylint: disable=g-import-not-at-top

  return tasks


def _task_dict(task) -> dict:
  return json.loads(json.dumps(task.to_dict(), default=str))


def resolve_task(config, metadata: dict | None, task=None):
  """The task to evaluate, checked against the checkpoint's metadata.

  Args:
    config: the run config (task, task_options).
    metadata: the checkpoint's metadata, or None.
    task: an explicit task object (overrides config.task; for tests and notebooks).
  """
  trained = (metadata or {}).get("task")
  if task is None:
    options = task_options(config)
    if config.task:
      check_task_name(config.task)
      tasks = _tasks_module()
      if not options and trained and trained.get("name") == config.task:
        options = dict(trained.get("options") or {})
      try:
        task = tasks.get_task(config.task, **options)
      except (TypeError, ValueError) as e:
        raise ValueError(f"config.task_options={options!r} for task {config.task!r}: {e}") from e
    elif trained:
      if options:
        raise ValueError("config.task_options is set but config.task is not; set both or neither.")
      try:
        task = _tasks_module().Task.from_dict(trained)
      except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"config.model={config.model!r}: metadata 'task' is not usable: {e}") from e
    else:
      raise ValueError(
          f"config.task is empty and the model {config.model!r} names no task in its metadata; "
          "set config.task."
      )
  if trained is not None:
    wanted = _task_dict(task)
    if wanted != json.loads(json.dumps(trained, default=str)):
      raise ValueError(
          f"task mismatch: the checkpoint {config.model!r} was trained for task {trained} but the "
          f"config asks for {wanted}. Evaluate it on its own task (leave config.task and "
          "config.task_options empty) or use a model trained for this task."
      )
  return task


def resolve_style(config, tokenizer, metadata: dict | None) -> str:
  if config.style != "auto":
    return config.style
  if metadata and metadata.get("style") in prompting.STYLES:
    return metadata["style"]
  return "chat" if getattr(tokenizer, "chat_template", None) is not None else "compact"


def setup(config, *, task=None) -> Setup:
  """Checks the config, loads the model and task and encodes the prompts.

  Raises:
    ValueError: naming the config field, for bad samplers or ks, unknown
      tasks, unloadable models, a task the checkpoint was not trained for, a
      vocabulary that does not fit the task, or prompts too long for the model.
  """
  check_config(config)
  model, tokenizer, metadata = load_model(config.model)
  task = resolve_task(config, metadata, task)
  style = resolve_style(config, tokenizer, metadata)
  prompting.check_vocabulary(model, tokenizer, task, style)
  max_new_tokens = int(config.max_new_tokens) or int((metadata or {}).get("max_new_tokens") or 0)
  if not max_new_tokens:
    raise ValueError(
        f"config.max_new_tokens is 0 (take it from the checkpoint) but the model {config.model!r} "
        "has no 'max_new_tokens' metadata; set config.max_new_tokens."
    )
  problems = list(task.problems(config.split, config.num_problems, start=config.start))
  if len(problems) != config.num_problems:
    raise ValueError(
        f"config.num_problems={config.num_problems}: task {task.name!r} gave {len(problems)} "
        f"{config.split!r} problems from start={config.start}."
    )
  pad_id = tokenizer.pad_id if tokenizer.pad_id is not None else tokenizer.eos_id
  try:
    shots = int(config.get("chat_shots", 0)) if style == "chat" else 0
    prompts, lengths = prompting.encode_prompts(tokenizer, task, problems, style, pad_id=pad_id, shots=shots)
  except ValueError as e:
    raise ValueError(f"task {task.name!r} in style {style!r} cannot be encoded by this model's tokenizer: {e}") from e
  limit = model.config.max_seq_len
  if prompts.shape[1] >= limit:
    raise ValueError(
        f"the longest prompt has {prompts.shape[1]} tokens, no fewer than the model's max_seq_len={limit}: "
        f"shorten the prompts (config.chat_shots={shots} solved examples precede each question)."
    )
  if prompts.shape[1] + max_new_tokens > limit:
    raise ValueError(
        f"config.max_new_tokens={max_new_tokens}: the longest prompt has {prompts.shape[1]} tokens "
        f"and prompt + max_new_tokens must be <= the model's max_seq_len={limit}; lower "
        f"max_new_tokens to at most {limit - prompts.shape[1]}."
    )
  if tokenizer.eos_id is None:
    raise ValueError(f"config.model={config.model!r}: the tokenizer has no EOS token to end completions.")
  name = config.model_name or model_label(config.model)
  return Setup(model, tokenizer, task, style, problems, prompts, lengths, max_new_tokens, name, metadata)


# --- Sampling and scoring --------------------------------------------------------------------


def _chunk_size(config) -> int:
  """Problems per generate call: problems_per_call, at most num_problems."""
  return min(int(config.problems_per_call), int(config.num_problems))


def _replications(config, sampler: str) -> int:
  return int(config.iid_replications or config.replications) if sampler == BASELINE else int(config.replications)


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


def model_fingerprint(model: llama.Model) -> str:
  """A hash of the model's config and every parameter's bytes."""
  leaves = jax.tree_util.tree_leaves_with_path(model.params)
  parts = [json.dumps(dataclasses.asdict(model.config), sort_keys=True).encode()]
  for path, leaf in leaves:
    array = np.asarray(leaf)
    parts += [jax.tree_util.keystr(path).encode(), str(array.dtype).encode(), array.tobytes()]
  return _hash_bytes(*parts)


def sample_spec(config, s: Setup) -> dict:
  """What the saved chunks depend on; its hash names the resume directory."""
  problems = [[str(p.index), str(p.question), str(p.answer)] for p in s.problems]
  return dict(
      format=CHUNK_FORMAT,
      model=model_fingerprint(s.model),
      task=_task_dict(s.task),
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


def answer_hash(answer: str) -> int:
  return int.from_bytes(hashlib.blake2b(answer.encode(), digest_size=8).digest(), "little", signed=True)


class _Scorer:
  """Scores completions and extracts answers, once per distinct (problem, text) in a run."""

  MAX_CACHED = 500_000  # distinct (problem, text) pairs kept; then the cache starts over.

  def __init__(self, task, style: str, threshold: float):
    self.task, self.style, self.threshold = task, style, threshold
    self._extract = task.compact_to_answer if style == "compact" else None
    self._cache: dict = {}

  def __call__(self, problem, text: str) -> tuple[bool, str | None]:
    key = (problem.index, text)
    hit = self._cache.get(key)
    if hit is None:
      score = float(self.task.score_text(problem, text, self.style))
      if self._extract is None:
        answer = _tasks_module().extract_answer(text)
      else:
        answer = self._extract(problem, text)
      if len(self._cache) >= self.MAX_CACHED:
        self._cache.clear()
      hit = self._cache[key] = (score >= self.threshold, None if answer is None else str(answer))
    return hit


def _stop_lengths(tokens: np.ndarray, lengths: np.ndarray, stop_ids) -> tuple[np.ndarray, np.ndarray]:
  """(lengths cut at the first stop id, whether the completion stopped), tokens [..., N]."""
  inside = np.arange(tokens.shape[-1]) < lengths[..., None]
  stops = np.isin(tokens, np.asarray(list(stop_ids))) & inside
  stopped = stops.any(-1)
  return np.where(stopped, stops.argmax(-1) + 1, lengths).astype(np.int32), stopped


def _chunk_path(directory: str, sampler: str, size: int, reps: int, chunk: int) -> str:
  return os.path.join(directory, f"{sampler}_n{size}_r{reps}_{chunk:05d}.npz")


_CHUNK_KEYS = ("correct", "answered", "answer_hash", "lengths", "stopped")


def _load_chunk(path: str, shape: tuple[int, int, int]) -> dict | None:
  if not os.path.exists(path):
    return None
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {name: np.asarray(data[name]) for name in _CHUNK_KEYS}
      examples = [str(x) for x in data["examples"]] if "examples" in data else []
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("%s: unreadable (%s); sampling this chunk again.", path, e)
    return None
  if any(a.shape != shape for a in arrays.values()):
    logging.warning("%s: shapes differ from %s; sampling this chunk again.", path, shape)
    return None
  arrays["examples"] = examples
  return arrays


def _save_chunk(path: str, arrays: dict) -> None:
  _atomic_write(path, lambda f: np.savez_compressed(f, **arrays), mode="wb")


def _sample_chunk(s: Setup, config, sampler: str, size: int, reps: int, key, rows: np.ndarray, scorer):
  """Samples and scores one chunk: problems `rows` (indices into s.problems), R groups each."""
  chunk = _chunk_size(config)
  padded = np.concatenate([rows, np.full(chunk - len(rows), rows[-1])])  # one shape for every call.
  prompt_rows = np.repeat(padded, reps)  # [c * R]: group r of problem i at i * R + r.
  indices = np.array([s.problems[i].index for i in padded], np.int64)
  group_ids = (np.repeat(indices, reps) * reps + np.tile(np.arange(reps), chunk)).astype(np.uint32)
  out = decode.generate(
      key,
      s.model,
      s.prompts[prompt_rows],
      s.prompt_lengths[prompt_rows],
      num_samples=size,
      max_new_tokens=s.max_new_tokens,
      sampling=sampling.SamplingOptions.create(sampler, **_transform_kwargs(config)),
      eos_id=int(s.tokenizer.eos_id),
      pad_id=int(s.tokenizer.pad_id if s.tokenizer.pad_id is not None else s.tokenizer.eos_id),
      group_ids=group_ids,
  )
  shape = (len(rows), reps, size)
  tokens = np.asarray(out.tokens).reshape(chunk, reps, size, -1)[: len(rows)]
  lengths, stopped = _stop_lengths(tokens, np.asarray(out.lengths).reshape(chunk, reps, size)[: len(rows)],
                                   s.tokenizer.stop_ids)
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
          hashes[i, r, j] = answer_hash(answer)
  examples = np.array(texts[0][0][: min(size, 8)], dtype=str)
  return dict(correct=correct, answered=answered, answer_hash=hashes, lengths=lengths, stopped=stopped,
              examples=examples)


def _progress_bar(total: int, enabled: bool, desc: str):
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top

  return tqdm(total=total, desc=desc, unit="chunk", disable=not (enabled and sys.stderr.isatty()))


def sample_all(config, s: Setup, *, on_chunk: Callable[[str, int, int], None] | None = None) -> dict:
  """Samples (or loads saved chunks of) every sampler and group size.

  Args:
    config: the run config.
    s: from `setup`.
    on_chunk: called as on_chunk(sampler, size, chunk_index) after each chunk
      is saved (a hook for progress reports and for tests that interrupt a run).

  Returns:
    {"directory": the resume directory, "samplers": sampler -> {"groups":
    size -> dict of arrays [P, R, size] (correct, answered, answer_hash,
    lengths, stopped) plus "examples" (completions of the first group),
    "stats": seconds, sampled_chunks, loaded_chunks}}.
  """
  spec = sample_spec(config, s)
  fingerprint = _hash_bytes(json.dumps(spec, sort_keys=True).encode())[:16]
  directory = os.path.join(config.workdir, f"{s.task.name}_{s.model_name}_{fingerprint}")
  os.makedirs(directory, exist_ok=True)
  spec_path = os.path.join(directory, "spec.json")
  if not os.path.exists(spec_path):
    write_json(spec, spec_path)
  num = len(s.problems)
  chunk = _chunk_size(config)
  starts = list(range(0, num, chunk))
  streams = [(name, size) for name in config.samplers for size in group_sizes(name, config.group_size, config.ks)]
  key = jax.random.key(int(config.seed))
  scorer = _Scorer(s.task, s.style, float(config.correct_threshold))
  out: dict = {}
  bar = _progress_bar(len(streams) * len(starts), bool(config.progress), f"{s.task.name}/{s.model_name}")
  try:
    for name, size in streams:
      reps = _replications(config, name)
      # Each sampler has its own stream; separate groups of size k have their own too.
      stream = jax.random.fold_in(key, stream_id(name))
      if size != config.group_size:
        stream = jax.random.fold_in(stream, size)
      entry = out.setdefault(name, dict(groups={}, stats=dict(seconds=0.0, sampled_chunks=0, loaded_chunks=0)))
      stats = entry["stats"]
      parts = []
      for j, start in enumerate(starts):
        rows = np.arange(start, min(start + chunk, num))
        path = _chunk_path(directory, name, size, reps, j)
        arrays = _load_chunk(path, (len(rows), reps, size)) if config.resume else None
        if arrays is None:
          began = time.time()
          arrays = _sample_chunk(s, config, name, size, reps, stream, rows, scorer)
          _save_chunk(path, arrays)
          stats["seconds"] += time.time() - began
          stats["sampled_chunks"] += 1
          arrays["examples"] = [str(x) for x in arrays["examples"]]
        else:
          stats["loaded_chunks"] += 1
        parts.append(arrays)
        bar.update(1)
        if on_chunk is not None:
          on_chunk(name, size, j)
      entry["groups"][size] = {k: np.concatenate([p[k] for p in parts]) for k in _CHUNK_KEYS}
      entry["groups"][size]["examples"] = parts[0]["examples"]
      logging.info("%s n=%d: %d chunks sampled, %d loaded", name, size, stats["sampled_chunks"],
                   stats["loaded_chunks"])
  finally:
    bar.close()
  return dict(directory=directory, samplers=out)


# --- Metrics ---------------------------------------------------------------------------------


def answer_codes(answered: np.ndarray, hashes: np.ndarray) -> np.ndarray:
  """int[P, ...]: per problem, the answers as small ints (-1: no answer)."""
  codes = np.full(hashes.shape, -1, np.int64)
  for p in range(hashes.shape[0]):
    mask = answered[p]
    if mask.any():
      codes[p][mask] = np.unique(hashes[p][mask], return_inverse=True)[1]
  return codes


def distinct_per_group(codes: np.ndarray, sampler: str, k: int) -> np.ndarray:
  """float64[P]: mean distinct answers in a group of k (unanswered completions not counted).

  Args:
    codes: int[P, R, n] answer codes (-1: none) of groups of n.
    sampler: the sampler that drew them.
    k: the group size: n, or a valid sub-group size (for i.i.d. groups, the
      aligned blocks of k are used).
  """
  n = codes.shape[-1]
  if k == n:
    sub = np.arange(n)[None, :]
  elif samplers_lib.get_sampler(sampler).independent:
    sub = np.arange((n // k) * k).reshape(-1, k)
  else:
    sub = metrics.valid_subgroups(samplers_lib.get_sampler(sampler), n, k)
  groups = np.sort(codes[:, :, sub], axis=-1)  # [P, R, S, k]
  new = groups >= 0
  new[..., 1:] &= groups[..., 1:] != groups[..., :-1]
  return new.sum(-1).mean(axis=(1, 2))


def _group_for_k(groups: dict, sampler: str, k: int) -> int:
  return k if k in groups else max(groups)


def analyze(config, s: Setup, samples: dict) -> tuple[list[dict], dict]:
  """(rows, per-sampler statistics) from `sample_all`'s output."""
  ks = [int(k) for k in config.ks]
  samples = samples["samplers"]
  correct = {name: {size: g["correct"] for size, g in samples[name]["groups"].items()} for name in config.samplers}
  baseline = correct[BASELINE][config.group_size]
  answer_probs = baseline.astype(np.float64).mean(axis=(1, 2))
  rows = report.passk_rows(
      correct, ks, answer_probs=answer_probs, seed=int(config.seed), num_resamples=int(config.num_resamples)
  )
  distinct, stats, per_problem = {}, {}, {}
  for name in config.samplers:
    groups = samples[name]["groups"]
    codes = {size: answer_codes(g["answered"], g["answer_hash"]) for size, g in groups.items()}
    distinct[name] = {k: float(distinct_per_group(codes[_group_for_k(groups, name, k)], name, k).mean()) for k in ks}
    full = groups[config.group_size]
    lengths = np.concatenate([g["lengths"].ravel() for g in groups.values()])
    stopped = np.concatenate([g["stopped"].ravel() for g in groups.values()])
    stats[name] = dict(
        samples=int(sum(g["correct"].size for g in groups.values())),
        mean_completion_tokens=float(lengths.mean()),
        truncated=float(1.0 - stopped.mean()),
        answered=float(full["answered"].mean()),
        pass_at_1=float(full["correct"].mean()),
        sampling_seconds=float(samples[name]["stats"]["seconds"]),
        sampled_chunks=int(samples[name]["stats"]["sampled_chunks"]),
        loaded_chunks=int(samples[name]["stats"]["loaded_chunks"]),
        examples=list(full["examples"]),
    )
    per_problem[name] = np.round(report.per_problem_pass_at_k(name, correct[name], ks), 6).tolist()
    if stats[name]["truncated"] > TRUNCATION_WARNING:
      logging.warning("%s: %.0f%% of completions hit max_new_tokens=%d without a stop token.",
                      name, 100 * stats[name]["truncated"], s.max_new_tokens)
  iid_pass = {r["k"]: r["pass_at_k"] for r in rows if r["sampler"] == BASELINE}
  for row in rows:
    name = row["sampler"]
    if iid_pass[row["k"]] <= 0.0:
      # Every sampler "reaches" an i.i.d. pass@k of 0 at k' = 1: no saving to measure.
      row.update(samples_saved=float("nan"), saved_low=float("nan"), saved_high=float("nan"))
    row.update(
        task=s.task.name,
        model=s.model_name,
        style=s.style,
        num_problems=len(s.problems),
        group_size=_group_for_k(correct[name], name, row["k"]),
        replications=_replications(config, name),
        distinct_per_group=distinct[name][row["k"]],
    )
  return rows, dict(stats=stats, per_problem=per_problem, answer_probs=np.round(answer_probs, 6).tolist())


def run(config, *, task=None, on_chunk: Callable[[str, int, int], None] | None = None) -> dict:
  """Runs the pass@k comparison described by `config` (see configs/passk.py).

  Args:
    config: the run config.
    task: optional task object used instead of config.task (tests, notebooks).
    on_chunk: optional hook, see `sample_all`.

  Returns:
    The result dict (`save_outputs` writes it): kind, task, model, style,
    config, rows (one per sampler and k), per-sampler statistics, the
    per-problem pass@k of every sampler and the i.i.d. p_i.
  """
  began = time.time()
  s = setup(config, task=task)
  logging.info("%s on %s (%s style): %d problems, prompts of %d tokens, max_new_tokens=%d",
               s.model_name, s.task.name, s.style, len(s.problems), s.prompts.shape[1], s.max_new_tokens)
  samples = sample_all(config, s, on_chunk=on_chunk)
  rows, extra = analyze(config, s, samples)
  return dict(
      kind=RESULT_KIND,
      version=RESULT_VERSION,
      task=s.task.name,
      task_spec=_task_dict(s.task),
      model=s.model_name,
      model_path=os.fspath(config.model),
      style=s.style,
      num_problems=len(s.problems),
      problem_indices=[int(p.index) for p in s.problems],
      prompt_length=int(s.prompts.shape[1]),
      max_new_tokens=s.max_new_tokens,
      mean_pass_at_1=float(np.mean(extra["answer_probs"])),
      workdir=samples["directory"],
      seconds=time.time() - began,
      config=config.to_dict() if hasattr(config, "to_dict") else dict(config),
      rows=rows,
      samplers=extra["stats"],
      answer_probs=extra["answer_probs"],
      per_problem_pass_at_k=extra["per_problem"],
  )


# --- Output files ----------------------------------------------------------------------------


def result_path(output_dir: str, task_name: str, model_name: str) -> str:
  return os.path.join(output_dir, f"{task_name}_{model_name}.json")


def build_summary(output_dir: str) -> list[dict]:
  """Rebuilds <output_dir>/summary.json from every result file there; returns its rows.

  Files that are not results of this runner (other JSON, unreadable files) are skipped.
  """
  rows = []
  for path, result in files.load_results(output_dir, RESULT_KIND, skip=(SUMMARY_NAME,)):
    for row in result.get("rows", []):
      rows.append({field: row.get(field) for field in SUMMARY_FIELDS} | {"file": os.path.basename(path)})
  write_json(rows, os.path.join(output_dir, SUMMARY_NAME))
  return rows


def save_outputs(result: dict, output_dir: str, *, plot: bool = True) -> dict[str, str]:
  """Writes <task>_<model>.png (if plot) and .json atomically, then rebuilds summary.json.

  Returns:
    {"json": path, "png": path or absent, "summary": path}.
  """
  path = result_path(output_dir, result["task"], result["model"])
  paths = {}
  if plot:
    from qmotto.evals import plots  # pylint: disable=g-import-not-at-top

    png = os.path.splitext(path)[0] + ".png"
    plots.plot_passk(result, png)
    paths["png"] = png
  write_json(result, path)
  paths["json"] = path
  build_summary(output_dir)
  paths["summary"] = os.path.join(output_dir, SUMMARY_NAME)
  return paths


def run_and_save(config, *, task=None, on_chunk=None) -> tuple[dict, dict[str, str]]:
  """`run`, then `save_outputs` to config.output_dir; (result, paths)."""
  result = run(config, task=task, on_chunk=on_chunk)
  return result, save_outputs(result, config.output_dir, plot=bool(config.plot))
