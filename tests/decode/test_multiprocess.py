"""Many hosts, for real: two processes on this machine, 4 CPU devices each, one 2x4 mesh.

`qmotto.sharding.initialize_distributed` joins them (JAX's coordinator and
gloo CPU collectives over localhost); each process loads the same tiny model,
shards it over the 2x4 mesh of all 8 devices and runs the sharded generate;
the gathered samples must equal one process with 8 devices.
"""

import os
import socket
import subprocess
import sys

import numpy as np

from tests import devices

TIMEOUT = 240


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(device_count: int) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={device_count}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = str(devices.ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _start(args, device_count):
  return subprocess.Popen(
      [sys.executable, "-m", "tests.decode.multiprocess_worker", *args], cwd=devices.ROOT,
      env=_env(device_count), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
  )


def _finish(processes):
  """Waits for every process; kills them all if one fails or time runs out. Returns their stderr."""
  errors = []
  try:
    for p in processes:
      _, err = p.communicate(timeout=TIMEOUT)
      errors.append(err)
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
        p.wait()
  return errors


def test_two_processes_equal_one(tmp_path, mesh="2x4"):
  port = _free_port()
  two = tmp_path / "two.npz"
  workers = [
      _start([f"--out={two}", f"--mesh={mesh}", f"--coordinator=localhost:{port}", "--num_processes=2",
              f"--process_id={i}"], device_count=4)
      for i in range(2)
  ]
  single = tmp_path / "one.npz"
  # The reference is a one-process distributed job, so that its collectives
  # are gloo's too: XLA's in-process all-reduce sums in another order, and
  # the code-mode samplers turn last-bit logit differences into other
  # (still exact) tokens.
  reference = _start([f"--out={single}", f"--mesh={mesh}", f"--coordinator=localhost:{_free_port()}",
                      "--num_processes=1", "--process_id=0"], device_count=8)
  errors = _finish(workers + [reference])
  codes = [p.returncode for p in workers + [reference]]
  assert codes == [0, 0, 0], "\n---\n".join(e[-3000:] for e in errors)
  a, b = np.load(two), np.load(single)
  assert int(a["process_count"]) == 2 and int(a["device_count"]) == 8 and int(b["process_count"]) == 1
  for sampler in ("iid", "lattice"):
    np.testing.assert_array_equal(a[f"{sampler}/tokens"], b[f"{sampler}/tokens"], err_msg=sampler)
    np.testing.assert_array_equal(a[f"{sampler}/lengths"], b[f"{sampler}/lengths"], err_msg=sampler)
    np.testing.assert_allclose(a[f"{sampler}/logprobs"], b[f"{sampler}/logprobs"], rtol=1e-6, atol=1e-6)
    assert a[f"{sampler}/tokens"].shape == (8, 4, 6)
