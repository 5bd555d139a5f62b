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
