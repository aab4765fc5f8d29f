"""Kept for nbgrader courses released before the instructor code moved: their
`nbgrader_config.py` names `grader.nbexecute.ExecuteUntilKernelDies`. Not in the student kit."""

from grader.instructor.nbexecute import ExecuteUntilKernelDies

__all__ = ["ExecuteUntilKernelDies"]
