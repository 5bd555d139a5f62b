"""Many hosts, for real: two processes on this machine, 4 CPU devices each, one mesh over all 8.

`qmotto.sharding.initialize_distributed` joins them (JAX's coordinator
service on a free localhost port, gloo for the cross-process CPU
collectives); each process (tests/decode/multiprocess_worker.py) builds the
same tiny model and NumPy prompts, runs the sharded generate over the mesh
for the iid and lattice samplers and gathers the samples with
`process_allgather`. They must equal those of one process with 8 devices.

The reference is a one-process distributed job (same coordinator, same gloo
collectives), not a plain process: with a "model" axis > 1 each forward pass
all-reduces over it, gloo and XLA's in-process all-reduce sum in another
order, and the code-mode samplers (lattice) turn those last-bit logit
differences into other (still exact) tokens. Measured on a 2x4 mesh: a plain
process gives the same iid and sobol tokens (logprobs within 5e-6) but 33
of lattice's 192 other tokens; on an "8" mesh (no "model" axis) a plain
process is bit-identical for all three. `MESH` switches the layout: "8"
(`make_mesh()`) or "DxM" (`make_mesh(data=D, model=M)`).

The three processes run at once (about 30 s on an idle 2-core machine,
mostly XLA compiles: 2 per process); they are killed as soon as one fails,
at the deadline, and whatever happens to the test.
"""

import contextlib
import os
import socket
import subprocess
import sys
import time

import numpy as np

from tests import devices
from tests.decode import multiprocess_worker as worker

MESH = "2x4"
TIMEOUT = 180  # seconds for the whole job (about 30 on an idle 2-core machine; xdist neighbours slow it).
PORT_TRIES = 3


def _free_ports(count: int) -> list[int]:
  """`count` distinct ports free now, as the coordinator binds them ("[::]:port", else IPv4)."""
  with contextlib.ExitStack() as stack:
    ports = []
    for _ in range(count):
      try:
        s = stack.enter_context(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
        s.bind(("::", 0))
      except OSError:
        s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        s.bind(("localhost", 0))
      ports.append(s.getsockname()[1])
    return ports


def _env(device_count: int) -> dict:
  env = dict(os.environ)
  flags = f"--xla_force_host_platform_device_count={device_count}"
  env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = str(devices.ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _run_all(jobs, log_dir, timeout=TIMEOUT):
  """Runs jobs [(name, args, device_count)] at once; returns {name: (returncode, stderr)}.

  A job that fails stops the others at once (a process whose peer died would
  wait for it until JAX's own timeouts), and every process is killed and
  reaped on the way out, whatever happens.
  """
  processes, logs = {}, {}
  try:
    for name, args, device_count in jobs:
      logs[name] = open(log_dir / f"{name}.stderr", "w+")
      processes[name] = subprocess.Popen(
          [sys.executable, "-m", "tests.decode.multiprocess_worker", *args], cwd=devices.ROOT,
          env=_env(device_count), stdin=subprocess.DEVNULL, stdout=logs[name], stderr=subprocess.STDOUT,
      )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      codes = [p.poll() for p in processes.values()]  # every one polled: no short cut.
      if None not in codes or any(code not in (None, 0) for code in codes):
        break
      time.sleep(0.1)
  finally:
    for p in processes.values():
      if p.poll() is None:
        p.kill()
    for p in processes.values():
      p.wait()
    results = {}
    for name, log in logs.items():
      log.seek(0)
      text = "\n".join(l for l in log.read().splitlines() if not l.startswith("[Gloo]"))
      log.close()
      results[name] = (processes[name].returncode if name in processes else None, text)
  return results


def _report(results) -> str:
  """Each process's return code and the end of its output (-9: killed after a failure or at the deadline)."""
  return "\n".join(f"--- {name}: returncode {code}\n{text[-3000:]}" for name, (code, text) in results.items())


def _run_job(tmp_path, mesh):
  """Two processes x 4 devices and the one-process reference; returns (results, their .npz paths)."""
  for attempt in range(PORT_TRIES):
    two_port, one_port = _free_ports(2)
    two, one = tmp_path / f"two{attempt}_{{process}}.npz", tmp_path / f"one{attempt}.npz"
    jobs = [
        (f"process{i}", [f"--out={two}", f"--mesh={mesh}", f"--coordinator=localhost:{two_port}",
                         "--num_processes=2", f"--process_id={i}"], 4)
        for i in range(2)
    ]
    jobs.append(("reference", [f"--out={one}", f"--mesh={mesh}", f"--coordinator=localhost:{one_port}",
                               "--num_processes=1", "--process_id=0"], 8))
    results = _run_all(jobs, tmp_path)
    # Someone took a port between our check and the coordinator's bind: again.
    if not any("Failed to add port" in text for _, text in results.values()):
      break
  paths = [str(two).format(process=i) for i in range(2)] + [str(one).format(process=0)]
  return results, paths


def test_two_processes_equal_one(tmp_path, mesh=MESH):
  start = time.monotonic()
  results, paths = _run_job(tmp_path, mesh)
  codes = {name: code for name, (code, _) in results.items()}
  assert set(codes.values()) == {0}, f"{codes} after {time.monotonic() - start:.0f} s\n{_report(results)}"
  first, second, reference = (np.load(p) for p in paths)
  shape = [int(n) for n in mesh.split("x")] if "x" in mesh else [int(mesh), 1]
  for out, index, count in [(first, 0, 2), (second, 1, 2), (reference, 0, 1)]:
    assert int(out["process_index"]) == index and int(out["process_count"]) == count
    assert int(out["device_count"]) == 8 and int(out["local_device_count"]) == 8 // count
    assert out["mesh_shape"].tolist() == shape
    np.testing.assert_array_equal(out["prompts"], reference["prompts"])
  for sampler in worker.SAMPLERS:
    shape = (worker.NUM_PROMPTS, worker.NUM_SAMPLES, worker.MAX_NEW_TOKENS)
    assert first[f"{sampler}/tokens"].shape == shape
    assert first[f"{sampler}/lengths"].shape == shape[:2]
    for out, name in [(first, "process 0"), (second, "process 1")]:
      message = f"{sampler}, {name} of 2 vs one process"
      np.testing.assert_array_equal(out[f"{sampler}/tokens"], reference[f"{sampler}/tokens"], err_msg=message)
      np.testing.assert_array_equal(out[f"{sampler}/lengths"], reference[f"{sampler}/lengths"], err_msg=message)
      np.testing.assert_allclose(
          out[f"{sampler}/logprobs"], reference[f"{sampler}/logprobs"], rtol=1e-6, atol=1e-6, err_msg=message
      )
  # The samples are not degenerate: several distinct tokens per group.
  assert min(len(np.unique(g)) for g in first["iid/tokens"]) > 1
