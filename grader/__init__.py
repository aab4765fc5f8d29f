"""torchdrill's autograder: student code runs in a sandboxed worker, tests in a trusted
pytest harness; see DEVELOPERS.md for the architecture."""

__version__ = "0.1.0"
