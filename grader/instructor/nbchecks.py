"""The cells of checks of a submitted notebook under `nbgrader autograde`, where no kernel runs:
put back as the release recorded them, and their outputs written from the grader's report.

What the release recorded (`read_release`): the cells nbgrader's gradebook holds for the
notebook (each cell of checks with its source, hidden part included, its checksum and points;
each solution cell's id), in the order of the course's source notebook, whose metadata also
says the topic, its functions (by which the release grouped the tests into cells) and how it
counts GPU tests. The course's notebooks have only those two kinds of nbgrader cells.

A submission changes none of that. Whatever its cells and their metadata say,
`restore_checks` leaves each cell of checks of the release exactly once, as the gradebook
recorded it (so nbgrader's OverwriteCells finds every checksum as recorded), puts back one
the student deleted, drops copies, and takes nbgrader's metadata off every cell that is not
the release's (a grade cell of the student's own earns nothing). `write_outputs` then writes
what a kernel would have shown for a cell: the text of `grader.nbcheck.checks_text` on stdout
and the points as the cell's value, which nbgrader takes as partial credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_output

from grader.instructor.nbgrader_course import HIDDEN_BEGIN, NBGRADER_SCHEMA, check_cell_id
from grader.nbcheck import GPU_METADATA_KEY, checks_text
from grader.notebooks import METADATA_KEY, WHOLE_TOPIC
from grader.report.schema import Report

REPORT_FILE = "torchdrill-report.json"  # the grader's report, beside the autograded notebook


@dataclass(frozen=True)
class ReleasedCell:
    """A cell as the gradebook recorded it: a cell of checks (its points) or a solution cell
    (points None)."""

    grade_id: str
    cell_type: str
    source: str
    checksum: str
    locked: bool
    points: float | None

    @property
    def checks(self) -> bool:
        return self.points is not None

    def metadata(self) -> dict[str, Any]:
        """The cell's nbgrader metadata, as `nbgrader generate_assignment` writes it."""
        meta = {"grade": self.checks, "grade_id": self.grade_id, "locked": self.locked,
                "solution": not self.checks, "task": False, "schema_version": NBGRADER_SCHEMA,
                "cell_type": self.cell_type, "checksum": self.checksum}
        return {**meta, "points": self.points} if self.checks else meta


@dataclass(frozen=True)
class ReleasedNotebook:
    """What the release says about one notebook: its topic and functions, its notebook
    metadata, and its cells in order."""

    topic: str
    functions: list[str]
    metadata: dict[str, Any]
    cells: list[ReleasedCell]

    def function_of(self, cell: ReleasedCell) -> str | None:
        """The function a cell of checks is about (WHOLE_TOPIC: the topic's other tests)."""
        for function in [*self.functions, WHOLE_TOPIC]:
            if check_cell_id(function) == cell.grade_id:
                return function
        raise RuntimeError(f"the cell of checks {cell.grade_id!r} is about none of "
                           f"{self.topic}'s functions: run `make release` and `nbgrader "
                           "generate_assignment` again.")


def source_notebook(path: Path) -> NotebookNode:
    """The course's source notebook (the instructor's file), checked to be the course's: its
    metadata says the topic, its functions and how it counts GPU tests
    (`grader.nbcheck.GPU_METADATA_KEY`)."""
    nb = nbformat.read(path, as_version=4)
    if not isinstance(nb.metadata.get(METADATA_KEY), dict):
        raise RuntimeError(f"{path} is not a notebook of the torchdrill course (no "
                           f"{METADATA_KEY!r} metadata): run `make release` again.")
    return nb


def read_release(source: NotebookNode, db_url: str, assignment: str,
                 notebook: str) -> ReleasedNotebook:
    """The release of `notebook` in `assignment`: the gradebook's cells, in the order of the
    source notebook (`source_notebook`)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        record = gb.find_notebook(notebook, assignment)
        points = {c.name: float(c.max_score) for c in record.grade_cells}
        solutions = {c.name for c in record.solution_cells}
        recorded = {c.name: ReleasedCell(c.name, c.cell_type, c.source, c.checksum, c.locked,
                                         None if c.name in solutions else points[c.name])
                    for c in record.source_cells if c.name in points or c.name in solutions}
    order = [_grade_id(c) for c in source.cells]
    cells = [recorded.pop(i) for i in order if i in recorded] + list(recorded.values())
    info = source.metadata[METADATA_KEY]
    return ReleasedNotebook(info.get("topic", assignment), list(info.get("functions", [])),
                            dict(source.metadata), cells)


def _grade_id(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _check_cell(cell: ReleasedCell) -> NotebookNode:
    """A cell of checks as the gradebook recorded it, locked as the release locked it."""
    return new_code_cell(cell.source, metadata={"deletable": False, "editable": False,
                                                "nbgrader": cell.metadata()})


def restore_checks(nb: NotebookNode, release: ReleasedNotebook) -> list[str]:
    """Makes the notebook's nbgrader cells the release's (see the module docstring); returns
    what it changed beyond restoring the cells of checks, for the log."""
    released = {c.grade_id: c for c in release.cells}
    cells: list[NotebookNode] = []
    placed: dict[str, int] = {}  # grade_id -> its index in `cells`
    changes: list[str] = []
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        if grade_id in released and grade_id not in placed:
            placed[grade_id] = len(cells)
            if released[grade_id].checks:
                cell = _check_cell(released[grade_id])
            else:  # a solution cell: the student's code, the release's metadata
                cell.metadata["nbgrader"] = released[grade_id].metadata()
        elif grade_id in released and released[grade_id].checks:
            changes.append(f"a second cell {grade_id} was left out")
            continue
        elif "nbgrader" in cell.get("metadata", {}):
            del cell.metadata["nbgrader"]
            changes.append(f"a cell with nbgrader metadata that is not the release's "
                           f"(grade_id {grade_id!r}) lost it: it is not graded")
        cells.append(cell)
    for index, missing in enumerate(release.cells):
        if missing.checks and missing.grade_id not in placed:
            after = [placed[c.grade_id] for c in release.cells[:index] if c.grade_id in placed]
            at = max(after) + 1 if after else len(cells)
            cells.insert(at, _check_cell(missing))
            placed = {k: i + 1 if i >= at else i for k, i in placed.items()}
            placed[missing.grade_id] = at
            changes.append(f"cell {missing.grade_id} was missing: put back from the release")
    nb.cells = cells
    return changes


def write_outputs(nb: NotebookNode, release: ReleasedNotebook, report: Report) -> None:
    """Each cell of checks' outputs (after `restore_checks`), from the grader's `report`."""
    checks = {c.grade_id: c for c in release.cells if c.checks}
    for cell in nb.cells:
        if _grade_id(cell) in checks:
            cell.outputs = _outputs(report, release, checks[cell.metadata.nbgrader.grade_id])
            cell.execution_count = None


def _outputs(report: Report, release: ReleasedNotebook, cell: ReleasedCell) -> list[NotebookNode]:
    """What the kernel would have shown for a cell of checks: its public checks' text and,
    where the cell has a hidden part, the hidden checks' text, then the points as the cell's
    value; an error output (0 points) where the cell would have raised."""
    texts: list[str] = []
    try:
        function = release.function_of(cell)
        text, earned = checks_text(report, release.topic, function, release.functions)
        texts.append(text)
        if HIDDEN_BEGIN in cell.source:
            text, earned = checks_text(report, release.topic, function, release.functions,
                                       hidden=True, points=cell.points)
            texts.append(text)
    except RuntimeError as e:
        return [*_stdout(texts), new_output("error", ename="RuntimeError", evalue=str(e),
                                            traceback=[f"RuntimeError: {e}"])]
    return [*_stdout(texts), new_output("execute_result", data={"text/plain": repr(earned)},
                                        execution_count=None)]


def _stdout(texts: list[str]) -> list[NotebookNode]:
    return [new_output("stream", name="stdout", text="".join(t + "\n" for t in texts))] \
        if texts else []


def counted_without_cuda(metadata: dict[str, Any]) -> str | None:
    """Why a notebook released with `metadata` may not be autograded here, or None: its cells
    count GPU tests and this machine has no CUDA device."""
    gpu = metadata.get(GPU_METADATA_KEY) or {}
    if gpu.get("tests") != "counted" or not gpu.get("points"):
        return None
    import torch  # only for a notebook that counts GPU tests

    if torch.cuda.is_available():
        return None
    return (f"this notebook's checks count {gpu['points']:g} points of GPU tests (released with "
            "[gpu] tests = \"counted\" in course.toml) and this machine has no CUDA device: "
            "autograde it on a machine with CUDA. Nothing was scored.")
