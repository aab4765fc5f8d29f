"""Loads the grading plugin, so `pytest tests/public --submission DIR` grades DIR directly."""

pytest_plugins = ["grader.plugin"]
