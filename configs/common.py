"""Shared by the config files: the variant argument `--config=configs/grpo.py:task=maze,seed=1,smoke`.

    from configs import common


    def get_config(arg: str = "") -> ml_collections.ConfigDict:
      args = common.parse_arg(
          arg, "configs/grpo.py", example="task=maze,sampler=lattice,seed=0",
          choices={"task": TASKS}, task="countdown", sampler="lattice", seed=0, smoke=False,
      )
      ... args.task, args.seed, args.smoke ...

Keys and their types come from the defaults, as in big_vision's
`configs.common.parse_arg`: a bool is a flag, written `smoke`, `smoke=1` or
`smoke=0`; an int must be written as an int >= 0; anything else is a string.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import ml_collections

SMOLLM2 = "smollm2-135m-instruct"
MODEL_ALIASES = {"smollm2": SMOLLM2, SMOLLM2: SMOLLM2}


def parse_arg(
    arg: str, where: str, *, example: str, choices: Mapping[str, Sequence[Any]] | None = None, **defaults
) -> dict[str, Any]:
  """'task=maze,seed=1,smoke' -> {'task': 'maze', 'seed': 1, 'smoke': True, ...every other default}.

  Args:
    arg: the text after the config file's colon ("" for none); items are
      separated by commas.
    where: the config file, named in errors.
    example: a valid argument, shown in errors.
    choices: key -> the values it may take (checked after parsing, defaults
      included, so a required key can default to "" and list its choices).
    **defaults: every allowed key with its default value and type.

  Returns:
    A dict of every key in `defaults`, overridden by `arg`.

  Raises:
    ValueError: an unknown key, a key without a value, a flag not 0 or 1, an
      int that is not an int >= 0, or a value outside `choices`; the message
      names the config file, the key and the allowed values.
  """
  values = dict(defaults)
  for item in filter(None, (x.strip() for x in (arg or "").split(","))):
    key, eq, value = (part.strip() for part in item.partition("="))
    default = defaults.get(key)
    if key not in defaults or (eq and not value) or (not eq and not isinstance(default, bool)):
      raise ValueError(
          f"{where}: bad argument {item!r}; expected key=value with key in {tuple(defaults)} (flags: "
          f"{tuple(k for k, v in defaults.items() if isinstance(v, bool))} may stand alone), e.g. {example!r}."
      )
    if isinstance(default, bool):
      if eq and value not in ("0", "1"):
        raise ValueError(f"{where}: {key} must be 0 or 1 (or the bare flag {key!r}), got {value!r}.")
      values[key] = not eq or value == "1"
    elif isinstance(default, int):
      if not value.isdigit():
        raise ValueError(f"{where}: {key} must be an int >= 0, got {value!r}.")
      values[key] = int(value)
    else:
      values[key] = value
  for key, allowed in (choices or {}).items():
    if values[key] not in allowed:
      raise ValueError(f"{where}: {key} must be one of {tuple(allowed)} (e.g. {example!r}), got {values[key]!r}.")
  return values


def sampling_run_config(
    args: Mapping[str, Any], where: str, *, num_problems: int, samplers: Sequence[str], replications: int,
    iid_replications: int,
) -> tuple[ml_collections.ConfigDict, bool]:
  """The fields the sampling runners share (pass@k, test-time scaling: `qmotto.evals.chunks`), and chat.

  The model is args["model"] (an alias of MODEL_ALIASES, a path, or "" for
  the task-model checkpoint checkpoints/<task>); chat is True for SmolLM2 or
  the `chat` flag, and needs a task.

  Returns:
    (config, chat).

  Raises:
    ValueError: a chat model without task=<name>, naming `where`.
  """
  task = args["task"]
  model = MODEL_ALIASES.get(args["model"], args["model"])
  if not model and task:
    model = f"checkpoints/{task}"
  chat = model == SMOLLM2 or bool(args["chat"])
  if chat and not task:
    raise ValueError(f"{where}: model={model!r} needs task=<name> (it has no task metadata).")
  config = ml_collections.ConfigDict()
  # Model: a task-model checkpoint, "smollm2-135m-instruct", an HF directory or a .gguf.
  config.model = model
  config.model_name = ""  # label in file names and rows (default: the path's base name).
  # Task: "" and "" take the checkpoint's task and options; options are a JSON object.
  config.task = task
  config.task_options = ""
  config.style = "auto"  # "compact" (task models), "chat" (instruct models) or "auto".
  config.chat_shots = 0  # chat style: solved train examples before each question.
  config.split = "test"
  config.start = 0
  config.num_problems = num_problems
  # Sampling: R independent groups of n = group_size per problem and sampler
  # (coupled: replications; i.i.d.: iid_replications, 0 = R, pooled).
  config.samplers = tuple(samplers)
  config.group_size = 64
  config.replications = replications
  config.iid_replications = iid_replications
  config.temperature = 1.0
  config.top_k = 0  # 0: off.
  config.top_p = 1.0  # 1: off.
  config.min_p = 0.0  # 0: off.
  config.max_new_tokens = 0  # 0: the checkpoint's metadata.
  config.correct_threshold = 1.0  # a completion is correct when task.score_text >= this.
  config.problems_per_call = 16  # problems per generate call (one shape; the last chunk padded).
  config.seed = 0
  if chat:
    config.style = "chat"
    config.chat_shots = 3  # SmolLM2-135M follows the <answer> format only with examples.
    config.problems_per_call = 1
  return config, chat
