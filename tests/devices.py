"""Runs a test script in a subprocess with N forced CPU devices (fixed when JAX starts).

The script prints one line "REPORT<json>"; `run_script` returns that dict.
"""

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
