"""Run bookkeeping shared by the runners and trainers.

    from qmotto.utils import files, run_log, progress
    files.write_json(result, path)                        # atomic result files
    log = run_log.JsonlLog(path, keep_through=step)       # the resumable JSONL log
    bar = progress.progress_bar("auto", total=n, initial=0, desc="train")
    with locks.DirectoryLock(workdir, name="config.workdir", run="..."): ...  # one run per directory

Modules: `files` (atomic writes, JSON, reading a folder of results),
`run_log` (the JSONL run log), `progress` (progress bars, the resumed wall
clock), `logs` (quieting orbax's log lines), `numbers` (one check for numeric
settings given as Python, NumPy or JAX scalars), `locks` (an exclusive lock
on a run's directory that names its holder).
"""

from qmotto.utils import files
from qmotto.utils import locks
from qmotto.utils import logs
from qmotto.utils import numbers
from qmotto.utils import progress
from qmotto.utils import run_log
from qmotto.utils.files import atomic_write
from qmotto.utils.files import check_writable
from qmotto.utils.files import load_results
from qmotto.utils.files import remove_stale_temporaries
from qmotto.utils.files import to_jsonable
from qmotto.utils.files import write_json
from qmotto.utils.locks import DirectoryInUse
from qmotto.utils.locks import DirectoryLock
from qmotto.utils.locks import hold_run_directory
from qmotto.utils.locks import output_lock
from qmotto.utils.logs import quiet_orbax_logs
from qmotto.utils.numbers import check_float
from qmotto.utils.numbers import check_int
from qmotto.utils.progress import PROGRESS_BAR
from qmotto.utils.progress import Stopwatch
from qmotto.utils.progress import progress_bar
from qmotto.utils.run_log import JsonlLog
from qmotto.utils.run_log import read_jsonl

__all__ = [
    "DirectoryInUse",
    "DirectoryLock",
    "JsonlLog",
    "PROGRESS_BAR",
    "Stopwatch",
    "atomic_write",
    "check_float",
    "check_int",
    "check_writable",
    "files",
    "hold_run_directory",
    "load_results",
    "locks",
    "logs",
    "numbers",
    "output_lock",
    "progress",
    "progress_bar",
    "quiet_orbax_logs",
    "read_jsonl",
    "remove_stale_temporaries",
    "run_log",
    "to_jsonable",
    "write_json",
]
