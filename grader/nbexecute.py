"""Kept for nbgrader courses released before the instructor code moved: their
`nbgrader_config.py` names `grader.nbexecute.ExecuteUntilKernelDies`, now the step that grades
in the sandbox (`grader.instructor.nbsteps.GradeInSandbox`). Not in the student kit."""

from grader.instructor.nbexecute import ExecuteUntilKernelDies

__all__ = ["ExecuteUntilKernelDies"]
