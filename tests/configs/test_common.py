"""configs/common.py: the variant argument of the config files."""

import pytest

from configs import common


def _parse(arg):
  return common.parse_arg(
      arg, "configs/x.py", example="task=maze,seed=1", choices={"task": ("maze", "countdown")},
      task="maze", seed=0, smoke=False, name="",
  )


@pytest.mark.parametrize("arg, expected", [
    ("", dict(task="maze", seed=0, smoke=False, name="")),
    ("task=countdown, seed=12 ,smoke", dict(task="countdown", seed=12, smoke=True, name="")),
    ("smoke=1,name=a/b.gguf", dict(task="maze", seed=0, smoke=True, name="a/b.gguf")),
    ("smoke=0,,", dict(task="maze", seed=0, smoke=False, name="")),
])
def test_values_take_the_defaults_types(arg, expected):
  assert _parse(arg) == expected


@pytest.mark.parametrize("arg, match", [
    ("size=3", r"configs/x.py: bad argument 'size=3'; expected key=value with key in \('task', 'seed', 'smoke', "
               r"'name'\) \(flags: \('smoke',\) may stand alone\), e.g. 'task=maze,seed=1'"),
    ("task", "bad argument 'task'"),
    ("name=", "bad argument 'name='"),
    ("smoke=yes", r"configs/x.py: smoke must be 0 or 1 \(or the bare flag 'smoke'\), got 'yes'"),
    ("seed=-1", "configs/x.py: seed must be an int >= 0, got '-1'"),
    ("seed=1.5", "seed must be an int >= 0, got '1.5'"),
    ("task=chess", r"configs/x.py: task must be one of \('maze', 'countdown'\) \(e.g. 'task=maze,seed=1'\), got 'chess'"),
])
def test_bad_arguments_name_the_key_and_the_allowed_values(arg, match):
  with pytest.raises(ValueError, match=match):
    _parse(arg)
