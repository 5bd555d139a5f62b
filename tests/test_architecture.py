"""The house rules of ARCHITECTURE.md, checked on the source (nothing is imported or run).

  * qmotto/ holds __init__.py and packages only.
  * No reach-ins: a name with a leading underscore is private to the package
    that defines it; no module outside that package imports or uses it
    (tests, experiments, configs and benchmarks included).
  * qmotto.metrics imports neither JAX nor another qmotto package.
  * qmotto.rl does not import the SFT trainer (qmotto.train.sft).
  * The arrows between packages go one way (the order in PACKAGE_LAYERS).
  * Every public function and method of decode and sampling takes at most
    10 parameters; sampling options travel as one SamplingOptions.
  * One function per name: no two public top-level functions of qmotto share
    a name, but for the entry points every runner has (ENTRY_POINT_NAMES).
  * No module-level counters or `global` statements in qmotto (trace counts
    in tests go through jax.monitoring, see tests/tracing.py).
"""

import ast
import collections
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qmotto"
CHECKED_TREES = ("qmotto", "tests", "experiments", "configs", "benchmarks")
MAX_PARAMETERS = 10
ENTRY_POINT_NAMES = {"run", "train", "train_step", "check_config", "build_summary"}
# Lower layers first: a package may import only packages of its own layer or below.
PACKAGE_LAYERS = (
    ("utils",),
    ("metrics", "qmc"),
    ("sampling", "models", "tasks"),
    ("decode",),
    ("evals", "train"),
    ("rl",),
)


def _python_files(*trees):
  for tree in trees:
    yield from sorted((ROOT / tree).rglob("*.py"))


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts = parts[:-1]
  return ".".join(parts)


def _package_of(module: str, path: pathlib.Path | None = None) -> str:
  """The package a module belongs to (a package is its own)."""
  if path is not None and path.name == "__init__.py":
    return module
  candidate = ROOT.joinpath(*module.split("."))
  if candidate.is_dir():
    return module
  return module.rpartition(".")[0]


def _inside(module: str, package: str) -> bool:
  return module == package or module.startswith(package + ".")


def _imports(tree: ast.AST, module: str, is_package: bool):
  """(imported module, imported name or None, node) for every import statement."""
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name, None, alias.asname, node
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = ".".join(parts[:keep] + ([base] if base else []))
      for alias in node.names:
        yield base, alias.name, alias.asname, node


def _private(name: str) -> bool:
  return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _parsed(trees=CHECKED_TREES):
  for path in _python_files(*trees):
    yield path, _module_name(path), ast.parse(path.read_text(), filename=str(path))


def test_qmotto_holds_only_packages():
  loose = sorted(p.name for p in PACKAGE.iterdir() if p.suffix == ".py" and p.name != "__init__.py")
  assert not loose, f"modules at the top of qmotto/: {loose}; put each in the package whose job it is."
  for sub in PACKAGE.iterdir():
    if sub.is_dir() and sub.name != "__pycache__":
      assert (sub / "__init__.py").is_file(), f"{sub} is not a package"


def test_no_reach_ins():
  offences = []
  for path, module, tree in _parsed():
    is_package = path.name == "__init__.py"
    aliases = {}  # local name -> qmotto module it stands for
    for base, name, asname, node in _imports(tree, module, is_package):
      if not base.startswith("qmotto"):
        continue
      target = f"{base}.{name}" if name else base
      local = asname or (name if name else base.split(".")[0])
      if name is None or (ROOT.joinpath(*target.split(".")).is_dir() or ROOT.joinpath(*target.split(".")).with_suffix(".py").is_file()):
        aliases[local] = target
      # A private module or a private name in the imported path.
      parts = target.split(".")
      for i, part in enumerate(parts):
        if _private(part):
          owner = _package_of(".".join(parts[:i]))
          if not _inside(module, owner):
            offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {target} (private to {owner})")
          break
    for node in ast.walk(tree):
      if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name):
        target = aliases.get(node.value.id)
        if target is None:
          continue
        owner = _package_of(target)
        if not _inside(module, owner):
          offences.append(
              f"{path.relative_to(ROOT)}:{node.lineno}: uses {target}.{node.attr} (private to {owner})"
          )
  assert not offences, "reach-ins:\n" + "\n".join(offences)


def _qmotto_imports(package: str):
  for path, module, tree in _parsed(("qmotto",)):
    if _inside(module, f"qmotto.{package}"):
      for base, name, _, node in _imports(tree, module, path.name == "__init__.py"):
        yield path, base, name, node


def test_metrics_imports_neither_jax_nor_other_packages():
  offences = [
      f"{path.relative_to(ROOT)}:{node.lineno}: {base}"
      for path, base, _, node in _qmotto_imports("metrics")
      if base.split(".")[0] in ("jax", "jaxlib", "flax", "optax")
      or (base.startswith("qmotto") and not _inside(base, "qmotto.metrics"))
  ]
  assert not offences, offences


def test_rl_does_not_import_the_sft_trainer():
  offences = [
      f"{path.relative_to(ROOT)}:{node.lineno}"
      for path, base, name, node in _qmotto_imports("rl")
      if _inside(base, "qmotto.train.sft") or (base == "qmotto.train" and name == "sft")
  ]
  assert not offences, offences


def test_package_arrows_point_down():
  layer = {pkg: i for i, pkgs in enumerate(PACKAGE_LAYERS) for pkg in pkgs}
  packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
  assert sorted(layer) == packages, "every package needs a layer in PACKAGE_LAYERS"
  offences = []
  for pkg in packages:
    for path, base, name, node in _qmotto_imports(pkg):
      target = f"{base}.{name}" if base == "qmotto" and name else base
      parts = target.split(".")
      if parts[0] != "qmotto" or len(parts) < 2 or parts[1] not in layer:
        continue
      if layer[parts[1]] > layer[pkg]:
        offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: {pkg} imports {parts[1]}")
  assert not offences, offences


def _parameters(fn: ast.FunctionDef) -> list[str]:
  args = fn.args
  names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
  names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
  return [n for n in names if n not in ("self", "cls")]


@pytest.mark.parametrize("package", ["decode", "sampling"])
def test_public_functions_take_at_most_ten_parameters(package):
  offences = []
  for path, module, tree in _parsed((f"qmotto/{package}",)):
    scopes = [(None, tree.body)] + [
        (node.name, node.body) for node in tree.body if isinstance(node, ast.ClassDef) and not _private(node.name)
    ]
    for owner, body in scopes:
      for node in body:
        if isinstance(node, ast.FunctionDef) and not _private(node.name) and not node.name.startswith("__"):
          count = len(_parameters(node))
          if count > MAX_PARAMETERS:
            where = f"{owner}.{node.name}" if owner else node.name
            offences.append(f"{module}.{where}: {count} parameters")
  assert not offences, offences


def test_one_function_per_name():
  defined = collections.defaultdict(list)
  for _, module, tree in _parsed(("qmotto",)):
    for node in tree.body:
      if isinstance(node, ast.FunctionDef) and not _private(node.name):
        defined[node.name].append(module)
  shared = {name: mods for name, mods in defined.items() if len(mods) > 1 and name not in ENTRY_POINT_NAMES}
  assert not shared, f"public functions of the same name in several modules: {shared}"


def test_no_module_level_counters_or_globals():
  offences = []
  for path, _, tree in _parsed(("qmotto",)):
    for node in ast.walk(tree):
      if isinstance(node, ast.Global):
        offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: global {', '.join(node.names)}")
    for node in tree.body:
      value = getattr(node, "value", None)
      if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(value, ast.Call):
        func = value.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in ("Counter", "defaultdict"):
          offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: a module-level {called}")
  assert not offences, offences
