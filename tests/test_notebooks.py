"""The notebooks in colab/: stored without outputs, and every code cell runs.

Cells are executed in order in one namespace with `exec`, from the repository
root, as a kernel would run them top to bottom (shell `!`/`%` lines are not
used by the notebooks). This keeps them from rotting without a Jupyter
dependency.
"""

import glob
import json
import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "colab", "*.ipynb")))


def code_cells(path):
  with open(path) as f:
    notebook = json.load(f)
  return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def run_notebook(path, namespace=None):
  """Executes the notebook's code cells in `namespace` (a new one by default); returns it."""
  namespace = {"__name__": "__main__"} if namespace is None else namespace
  for i, cell in enumerate(code_cells(path)):
    source = "".join(cell["source"])
    assert not any(line.lstrip().startswith(("!", "%")) for line in source.splitlines()), (path, i, "IPython magic")
    try:
      exec(compile(source, f"{os.path.basename(path)}[cell {i}]", "exec"), namespace)  # pylint: disable=exec-used
    except Exception as e:
      raise AssertionError(f"{path}: code cell {i} failed: {e!r}\n{source}") from e
  return namespace


def test_there_are_notebooks():
  assert any(p.endswith("quickstart.ipynb") for p in NOTEBOOKS), NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_outputs_are_stripped(path):
  for cell in code_cells(path):
    assert cell.get("outputs") == [] and cell.get("execution_count") is None, (path, cell["source"][:2])


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.endswith("quickstart.ipynb")], ids=os.path.basename)
def test_quickstart_runs(path, monkeypatch):
  monkeypatch.chdir(ROOT)
  monkeypatch.setenv("MPLBACKEND", "Agg")
  namespace = run_notebook(path)
  rows = namespace["result"]["rows"]
  assert {r["sampler"] for r in rows} == {"iid", "lattice"}
  assert all(0.0 <= r["pass_at_k"] <= 1.0 for r in rows)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.endswith("grpo.ipynb")], ids=os.path.basename)
def test_grpo_runs(path, monkeypatch):
  """A smoke-sized GRPO run per sampler, started from colab/ as Jupyter would."""
  monkeypatch.chdir(os.path.join(ROOT, "colab"))  # the notebook moves up to the root itself.
  monkeypatch.setenv("MPLBACKEND", "Agg")
  namespace = {"__name__": "__main__"}
  try:
    run_notebook(path, namespace)
    summary = namespace["summary"]
    assert {r["sampler"] for r in summary["rows"]} == {"iid", "lattice"}
    assert all("steps_to_target" in r for r in summary["rows"])
    for result in namespace["results"].values():
      assert result["metrics"]["step"] == 4 and os.path.exists(result["paths"]["plot"])
    assert namespace["fig"].axes
  finally:
    if "workdir" in namespace:
      shutil.rmtree(namespace["workdir"], ignore_errors=True)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.endswith("scale.ipynb")], ids=os.path.basename)
def test_scale_runs_on_the_cpu(path, monkeypatch, tmp_path):
  """The CPU path: one device, a hub id resolved offline from a populated cache, a 1x1 mesh."""
  from tests.models import helpers

  source = helpers.save_tiny_hf_checkpoint(tmp_path / "tiny-qwen2")
  helpers.cache_hub_repo(str(tmp_path / "hf_home"), "qmotto-test/tiny-qwen2", source)
  monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
  monkeypatch.delenv("HF_HUB_CACHE", raising=False)
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.chdir(ROOT)
  monkeypatch.setenv("QMOTTO_MODEL", "qmotto-test/tiny-qwen2")
  namespace = run_notebook(path)
  assert dict(namespace["mesh"].shape) == {"data": 1, "model": 1}
  tokens = namespace["tokens"]
  assert tokens.shape == (1, 16, 32)
  assert namespace["model"].mesh == namespace["mesh"] and namespace["tokenizer"] is not None


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.endswith("test_time_scaling.ipynb")], ids=os.path.basename)
def test_test_time_scaling_runs(path, monkeypatch):
  """One Countdown problem: its answers, i.i.d. vs coupled votes, and rounds until verified."""
  monkeypatch.chdir(ROOT)
  monkeypatch.setenv("MPLBACKEND", "Agg")
  namespace = run_notebook(path)
  curves, first = namespace["curves"], namespace["first"]
  assert set(curves) == {"iid", namespace["COUPLED"]}
  for curve in curves.values():
    assert all(0.0 <= v <= 1.0 for values in curve.values() for v in values)
    assert curve["pass@k"][0] == pytest.approx(curve["maj@k"][0])  # one sample: the vote is that sample.
  for (sampler, q), v in first.items():
    assert 4.0 <= v["samples"] <= 32.0 and 0.0 <= v["solved"] <= 1.0 and v["tokens"] >= v["samples"]
  assert namespace["fig"].axes
