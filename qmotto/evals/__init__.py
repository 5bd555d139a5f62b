"""Evaluations: the pass@k runner for models on tasks, its report and plots, and the toy suite.

    from qmotto.evals import passk, report
    result = passk.run(config)                        # configs/passk.py
    print(report.format_table(result["rows"]))
"""

from qmotto.evals import passk
from qmotto.evals import plots
from qmotto.evals import report
from qmotto.evals import toy
from qmotto.evals import toy_passk

__all__ = ["passk", "plots", "report", "toy", "toy_passk"]
