"""Kept for nbgrader courses released while their `nbgrader_config.py` named
`grader.instructor.nbexecute.ExecuteUntilKernelDies` (a kernel that ran the student's cells):
that name is now the step that grades in the sandbox instead, so autograding such a course
runs no student code outside it. Not in the student kit."""

from grader.instructor.nbsteps import GradeInSandbox as ExecuteUntilKernelDies

__all__ = ["ExecuteUntilKernelDies"]
