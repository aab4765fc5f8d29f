"""How a test can fail, as exceptions: the student's failures, each with the outcome the report
calls it, and the grader's own (`GraderError`), which is never a student's lost point.

A test raises these through the `student` handle (`grader.handle`) and the checks
(`grader.checks`); the plugin (`grader.plugin`) turns a StudentFailure into its `outcome`, an
AssertionError (`NotDifferentiable`, `ArgumentChanged` among them) into `failed`, and records a
GraderError in `Grading.grader_errors` instead of scoring it.

Which is which, read as a cheating student who has this source would read it: the worker runs
the student's code, so the student controls everything in it (its torch, the grader's modules
loaded there, the arguments' state, the bytes it sends back). Whatever the worker does or says
is therefore the student's: a reply that does not decode, an argument left in a state the
grader cannot compare or write back, a worker that claims our code failed in it. A GraderError
is raised only where the grader's own process fails on data it has checked, or reproduces a
failure the worker reports (`grader.handle.Session`): a student can trigger one only through a
real bug of the grader, never by saying so, and never to gain points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the sandbox imports this module: it stays free of the report's code
    from grader.report.schema import Outcome


class StudentFailure(Exception):
    """A failure of the student's code; `outcome` is what the report calls it."""

    outcome: Outcome = "error"


class NotImplementedByStudent(StudentFailure):
    outcome = "not_implemented"


class StudentRaised(StudentFailure):
    outcome = "error"


class StudentTimedOut(StudentFailure):
    outcome = "timeout"


class StudentCrashed(StudentFailure):
    """The worker died, broke the protocol, or failed in the grader's code after the
    submission's code changed what that code relies on (torch, the grader's modules)."""

    outcome = "error"


class ForbiddenCall(StudentFailure):
    outcome = "forbidden"


class NotDifferentiable(AssertionError):
    """The function's output does not depend on its input through autograd."""


class ArgumentChanged(AssertionError):
    """Student code changed an argument the contract says it leaves alone (a failed test), or
    left one the contract lets it update in a state the caller's tensor cannot take."""


class GraderError(Exception):
    """The grader itself failed (a bug of ours, not the student's fault): the test is not
    scored; grading the submission fails with the list of such tests."""
