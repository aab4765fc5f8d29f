"""nbgrader's Execute step, safe when the kernel dies.

When a submission kills its kernel (`os._exit`, a segfault, the memory limit), nbgrader's own
Execute raises, the submission is left out of the autograded folder, and the gradebook keeps
whatever scores an earlier autograde gave it: a resubmission that crashes keeps the old passes.
This step instead fails the cell the kernel died in and every code cell after it (they never
ran), so autograde records 0 for their checks and the scores reflect this submission. The
release's nbgrader_config.py puts it in place of Execute.
"""

from __future__ import annotations

from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute


def _died(text: str) -> NotebookNode:
    return new_output("error", ename="DeadKernelError", evalue=text,
                      traceback=[f"DeadKernelError: {text}"])


class ExecuteUntilKernelDies(Execute):
    """Execute, where a dead kernel fails the rest of the notebook instead of the run."""

    def preprocess(self, nb, resources=None, km=None):
        self.died_in: int | None = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if self.died_in is None:
            try:
                return super().preprocess_cell(cell, resources, index)
            except DeadKernelError:
                self.died_in = index
                self.log.warning("The kernel died in cell %d; the cells after it fail.", index)
                cell.outputs.append(_died("the kernel died while this cell ran (a crash, "
                                          "os._exit, or too much memory)"))
                return cell, self.resources
        if cell.cell_type == "code":
            cell.outputs = [_died(f"the kernel died in cell {self.died_in + 1}, so this cell "
                                  "never ran")]
        return cell, self.resources
