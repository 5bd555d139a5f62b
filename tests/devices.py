"""Runs a test script in a subprocess with N forced CPU devices (fixed when JAX starts).

The script prints one line "REPORT<json>"; `run_script` returns that dict.
`run_script_once` runs it once per test session, however many xdist workers
ask for it.
"""

import fcntl
import hashlib
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_script(script: str, device_count: int = 8, timeout: float = 900) -> dict:
  """Runs `script` with `device_count` CPU devices, the repository on the path; returns its REPORT."""
  env = dict(os.environ)
  env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={device_count}").strip()
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  result = subprocess.run(
      [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
  )
  assert result.returncode == 0, result.stderr[-5000:]
  line = [l for l in result.stdout.splitlines() if l.startswith("REPORT")][-1]
  return json.loads(line[len("REPORT"):])


def run_script_once(script: str, shared_dir: pathlib.Path, device_count: int = 8, timeout: float = 900) -> dict:
  """`run_script`, run by the first xdist worker that asks; the others wait for its report and read it.

  Args:
    script: as `run_script`.
    shared_dir: a folder every worker of this session sees, e.g.
      `tmp_path_factory.getbasetemp().parent` (pytest-xdist's recipe for
      once-per-session fixtures); pytest removes it with its old temporaries.
    device_count, timeout: as `run_script`.

  A script that fails leaves no report, so the next worker runs it again (and
  fails the same way). Without xdist it just runs: the parent of pytest's
  base temporary folder is then shared with other sessions.
  """
  if not os.environ.get("PYTEST_XDIST_WORKER"):
    return run_script(script, device_count=device_count, timeout=timeout)
  digest = hashlib.sha256(f"{device_count}\n{script}".encode()).hexdigest()[:16]
  report_path = shared_dir / f"device_script_{digest}.json"
  with open(shared_dir / f"device_script_{digest}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # held until the report is written; dropped however this process ends.
    if report_path.exists():
      return json.loads(report_path.read_text())
    report = run_script(script, device_count=device_count, timeout=timeout)
    partial = report_path.with_suffix(".tmp")
    partial.write_text(json.dumps(report))
    partial.replace(report_path)
    return report
