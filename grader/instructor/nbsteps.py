"""The steps a released course's nbgrader_config.py puts into nbgrader's pipelines.

- `AutogradeExecute` (autograde, in place of Execute): nbgrader's Execute made safe when the
  kernel dies (`grader.instructor.nbexecute`); it refuses a notebook whose GPU tests count
  (released with course.toml's [gpu] tests = "counted") on a machine without CUDA, so a class
  is never scored 0 on them for the machine's sake; and it keeps beside the notebook only the
  grader's report this run made (`grader.nbcheck.REPORT_FILE`, written by the first cell of
  checks): one the submission brought is deleted first, and so is the report when the kernel
  died (nbgrader then scores what did not run 0, which is not what the report says).
- `AddGraderReport` (generate_feedback): the feedback ends with that report as Markdown, as
  `grader batch` writes it (`grader.report.formats.to_markdown`), so the feedback file that
  `nbgrader release_feedback` hands out carries it.
"""

from __future__ import annotations

import json
from pathlib import Path

from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor

from grader.instructor.nbexecute import ExecuteUntilKernelDies
from grader.nbcheck import GPU_METADATA_KEY, REPORT_FILE
from grader.report.formats import to_markdown

REPORT_HEADING = ("---\n\n*torchdrill's grader on this notebook: the report `grader batch` "
                  "writes.*\n\n")


def _folder(resources: dict | None) -> Path:
    """The notebook's folder (the kernel's working folder under nbgrader)."""
    return Path(((resources or {}).get("metadata") or {}).get("path") or ".")


def counted_without_cuda(nb) -> str | None:
    """Why this notebook may not be autograded here, or None: its cells count GPU tests and
    this machine has no CUDA device."""
    gpu = nb.metadata.get(GPU_METADATA_KEY) or {}
    if gpu.get("tests") != "counted" or not gpu.get("points"):
        return None
    import torch  # only for a notebook that counts GPU tests

    if torch.cuda.is_available():
        return None
    return (f"this notebook's checks count {gpu['points']:g} points of GPU tests (released with "
            "[gpu] tests = \"counted\" in course.toml) and this machine has no CUDA device: "
            "autograde it on a machine with CUDA. Nothing was scored.")


class AutogradeExecute(ExecuteUntilKernelDies):
    """Execute, safe when the kernel dies, that refuses to score GPU tests without CUDA and
    keeps only this run's grader report beside the notebook."""

    def preprocess(self, nb, resources=None, km=None):
        report = _folder(resources) / REPORT_FILE
        report.unlink(missing_ok=True)  # brought by the submission: not this run's
        refusal = counted_without_cuda(nb)
        if refusal:
            self.log.error("%s", refusal)
            raise RuntimeError(refusal)
        nb, resources = super().preprocess(nb, resources, km)
        if self.died_in is not None:
            report.unlink(missing_ok=True)
        return nb, resources


class AddGraderReport(NbGraderPreprocessor):
    """Appends the grader's report on the notebook (left beside it by autograde) to the
    feedback, as Markdown; a notebook without one gets a line that says so."""

    def preprocess(self, nb, resources):
        path = _folder(resources) / REPORT_FILE
        try:
            text = to_markdown(json.loads(path.read_text()))
        except FileNotFoundError:
            text = ("No report of torchdrill's grader: its checks did not run to the end when "
                    "this notebook was autograded (see the cells above).")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self.log.warning("%s: not a report of the grader (%s)", path, e)
            text = "The report of torchdrill's grader on this notebook could not be read."
        nb.cells.append(new_markdown_cell(REPORT_HEADING + text))
        return nb, resources
