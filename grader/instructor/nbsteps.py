"""The steps a released course's nbgrader_config.py puts into nbgrader's pipelines. None of
them starts a kernel: under `nbgrader autograde` a student's code runs only in the grader's
sandbox, as under `grader batch`, and nbgrader's gradebook, export and feedback hold the
grader's scores.

- `ReadableNotebook` (autograde's exporter): a submitted notebook nbgrader cannot read (not
  UTF-8, not JSON, not a valid notebook) is autograded as the released notebook in its place,
  so the submission is scored (nothing, as `grader batch` scores it, with the reason in each
  cell) instead of failing the command and keeping the gradebook's earlier scores.
- `ChecksFromRelease` (sanitizing, in place of DeduplicateIds, before OverwriteCells): the
  cells of checks and nbgrader's metadata as the release recorded them
  (`grader.instructor.nbchecks.restore_checks`).
- `GradeInSandbox` (autograde, in place of Execute): grades the student's submitted folder
  with the grader (`grader.nbcheck.run_grader`: the report `grader batch` writes for that
  student), writes each cell of checks' output from that report, and leaves the report beside
  the autograded notebook (`REPORT_FILE`; one the submission brought is deleted first). It
  restores the cells of checks itself too, so a course configured before `ChecksFromRelease`
  existed is graded from the release as well. It refuses a notebook that counts GPU tests
  (released with course.toml's [gpu] tests = "counted") on a machine without CUDA, so a class
  is never scored 0 on them for the machine's sake.
- `AddGraderReport` (generate_feedback): the feedback ends with that report as Markdown, as
  `grader batch` writes it (`grader.report.formats.to_markdown`), so the feedback file that
  `nbgrader release_feedback` hands out carries it.

The courses released before this step graded in the sandbox name it `AutogradeExecute` here,
or `ExecuteUntilKernelDies` in `grader.instructor.nbexecute` or `grader.nbexecute`: all of
those names are this step, so autograding an old course folder runs no student code either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
from nbconvert.exporters import NotebookExporter
from nbformat.v4 import new_markdown_cell
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor

from grader.instructor.nbchecks import (
    REPORT_FILE,
    ReleasedNotebook,
    counted_without_cuda,
    read_release,
    restore_checks,
    source_notebook,
    write_outputs,
)
from grader.nbcheck import released_gpu_tests, run_grader
from grader.report.formats import to_markdown

REPORT_HEADING = ("---\n\n*torchdrill's grader on this notebook: the report `grader batch` "
                  "writes.*\n\n")


def _folder(resources: dict | None) -> Path:
    """The folder of the notebook being converted (under autograde: the autograded one)."""
    return Path(((resources or {}).get("metadata") or {}).get("path") or ".")


def _course_folder(config: Any, step: str, student: str, assignment: str) -> Path:
    """A folder of the course (nbgrader's `source`, `release`, `submitted` ... step) as its
    nbgrader configuration lays it out."""
    course = CourseDirectory(config=config)
    return Path(course.format_path(getattr(course, f"{step}_directory"), student, assignment))


class ReadableNotebook(NotebookExporter):
    """nbgrader's exporter, where a submitted notebook it cannot read becomes the released
    notebook (no code of the student's, every cell of checks)."""

    def from_file(self, file_stream, resources=None, **kw):
        try:
            nb = nbformat.reads(file_stream.read(), as_version=4)
            nbformat.validate(nb)
        except Exception as e:  # decoding, JSON, schema and version errors of many types
            info = resources["nbgrader"]
            released = _course_folder(self.config, "release", ".", info["assignment"])
            self.log.warning("%s's %s is not a notebook nbgrader can read (%s: %.200s): the "
                             "released notebook stands in for it, and the grader scores the "
                             "file itself", info["student"], info["notebook"],
                             type(e).__name__, e)
            nb = nbformat.read(released / f"{info['notebook']}.ipynb", as_version=4)
        return self.from_notebook_node(nb, resources, **kw)


class _FromRelease(NbGraderPreprocessor):
    """A step that makes the notebook's cells of checks the release's."""

    def source(self, resources) -> Path:
        """The course's source notebook of the notebook being converted."""
        info = resources["nbgrader"]
        folder = _course_folder(self.config, "source", ".", info["assignment"])
        return folder / f"{info['notebook']}.ipynb"

    def restore(self, nb, resources, source) -> ReleasedNotebook:
        """The release (from the gradebook and the `source` notebook), its cells of checks
        restored in `nb` (`restore_checks`; what else changed is logged)."""
        info = resources["nbgrader"]
        release = read_release(source, info["db_url"], info["assignment"], info["notebook"])
        for change in restore_checks(nb, release):
            self.log.warning("%s's %s: %s", info["student"], info["notebook"], change)
        return release


class ChecksFromRelease(_FromRelease):
    """The cells of checks and nbgrader's metadata as the release recorded them."""

    def preprocess(self, nb, resources):
        self.restore(nb, resources, source_notebook(self.source(resources)))
        return nb, resources


class GradeInSandbox(_FromRelease):
    """In place of Execute: the student's code graded in the sandbox, the cells of checks'
    outputs from the report, the report beside the notebook."""

    def preprocess(self, nb, resources):
        report_file = _folder(resources) / REPORT_FILE
        report_file.unlink(missing_ok=True)  # brought by the submission: not this run's
        path = self.source(resources)
        source = source_notebook(path)
        refusal = counted_without_cuda(source.metadata)
        if refusal:
            self.log.error("%s", refusal)
            raise RuntimeError(refusal)
        release = self.restore(nb, resources, source)
        info = resources["nbgrader"]
        folder = _course_folder(self.config, "submitted", info["student"], info["assignment"])
        if folder.name != info["assignment"] or folder.parent.name != info["student"]:
            raise RuntimeError(f"{folder} is not submitted/<student>/<assignment>: the grader "
                               "grades a student's folder as nbgrader lays it out by default "
                               "(CourseDirectory.directory_structure)")
        report = run_grader(folder.parent, release.topic, released_gpu_tests(path.read_bytes()))
        report_file.write_text(json.dumps(report, indent=1))
        write_outputs(nb, release, report)
        return nb, resources


AutogradeExecute = GradeInSandbox  # the name in the courses released before


class AddGraderReport(NbGraderPreprocessor):
    """Appends the grader's report on the notebook (left beside it by autograde) to the
    feedback, as Markdown; a notebook without one gets a line that says so."""

    def preprocess(self, nb, resources):
        path = _folder(resources) / REPORT_FILE
        try:
            text = to_markdown(json.loads(path.read_text()))
        except FileNotFoundError:
            text = ("No report of torchdrill's grader beside this notebook: it was autograded "
                    "before the course graded in the sandbox. Autograde it again.")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self.log.warning("%s: not a report of the grader (%s)", path, e)
            text = "The report of torchdrill's grader on this notebook could not be read."
        nb.cells.append(new_markdown_cell(REPORT_HEADING + text))
        return nb, resources
