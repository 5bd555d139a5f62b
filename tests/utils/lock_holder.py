"""A helper process that holds a directory's lock (`qmotto.utils.locks`), for the tests of runs.

    with lock_holder.held_by_another_process(workdir, run="grpo ...") as holder:
      ...   # holder.pid holds workdir's lock until the block ends (or holder is killed)

The process runs on this machine, is started by the test and killed at the
end of the block.
"""

import contextlib
import os
import subprocess
import sys
import tempfile

from qmotto.utils import locks

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOLDER = r"""
import sys, time
from qmotto.utils import locks
directory, lock_file, run, hold_s = sys.argv[1:5]
with locks.DirectoryLock(directory, name="config.workdir", run=run, lock_file=lock_file):
  print("locked", flush=True)
  time.sleep(float(hold_s))
print("released", flush=True)
"""


@contextlib.contextmanager
def held_by_another_process(directory, *, lock_file: str = locks.LOCK_NAME, run: str = "holder run",
                            hold_s: float = 120.0):
  """Starts a process that takes `directory`'s lock and keeps it `hold_s` seconds; yields its Popen."""
  with tempfile.TemporaryFile("w+") as stderr:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, os.fspath(directory), lock_file, run, str(hold_s)],
        stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO,
    )
    try:
      line = process.stdout.readline()
      if line.strip() != "locked":
        process.kill()
        process.wait(timeout=30)
        stderr.seek(0)
        raise AssertionError(f"the lock holder did not start: {line!r}\n{stderr.read()[-3000:]}")
      yield process
    finally:
      if process.poll() is None:
        process.kill()
      process.wait(timeout=30)
      process.stdout.close()
