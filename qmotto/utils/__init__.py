"""Run bookkeeping shared by the runners: atomic result files, JSON, the resumable JSONL log."""

from qmotto.utils import files

__all__ = ["files"]
