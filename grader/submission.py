"""Reading a submission into module sources: the worker gets text, never a path, so it needs
no access to the submission's folder (or anyone else's).

A submission is a folder of `<topic>.py` files or `<topic>.ipynb` notebooks, or one such file.
Notebooks may sit one level down, as nbgrader's `submitted/<student>/<topic>/<topic>.ipynb`
gives `<student>/<topic>/<topic>.ipynb`; their code cells become the module
(`grader.notebooks.module_source`). Where a topic has both, the `.py` file is the module, as it
would be for Python's own import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader.notebooks import NotebookError, module_source, read_notebook


@dataclass
class Submission:
    name: str
    path: Path
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # module -> (file, text)
    problems: dict[str, str] = field(default_factory=dict)  # module -> what was wrong

    def source(self, module: str) -> str | None:
        entry = self.sources.get(module)
        return entry[1] if entry else None


def load_submission(path: str | Path) -> Submission:
    """A folder of `<topic>.py` files or `<topic>.ipynb` notebooks (or one such file)."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"no submission at {path}")
    sub = Submission(name=path.stem if path.is_file() else path.name, path=path)
    files = [path] if path.is_file() else [*_notebooks(path), *sorted(path.glob("*.py"))]
    for f in files:  # notebooks first: a .py file of the same name replaces one
        if f.suffix == ".ipynb":
            _add_notebook(sub, f)
        else:
            sub.problems.pop(f.stem, None)
            _add_python(sub, f)
    return sub


def _notebooks(folder: Path) -> list[Path]:
    """`<name>.ipynb` in the folder and `<name>/<name>.ipynb` one level down."""
    top = sorted(folder.glob("*.ipynb"))
    nested = sorted(p for p in folder.glob("*/*.ipynb") if p.parent.name == p.stem)
    return top + [p for p in nested if p.stem not in {q.stem for q in top}]


def _read(sub: Submission, f: Path) -> bytes | None:
    try:
        return f.read_bytes()
    except OSError as e:
        sub.problems[f.stem] = f"{f.name} could not be read: {e.strerror}"
        return None


def _add_python(sub: Submission, f: Path) -> None:
    data = _read(sub, f)
    if data is None:
        return
    try:
        sub.sources[f.stem] = (str(f), data.decode("utf-8"))
    except UnicodeDecodeError:
        sub.problems[f.stem] = f"{f.name} is not UTF-8 text"


def _add_notebook(sub: Submission, f: Path) -> None:
    data = _read(sub, f)
    if data is None:
        return
    try:
        sub.sources[f.stem] = (str(f), module_source(read_notebook(data, f.name), f.name))
    except NotebookError as e:
        sub.problems[f.stem] = f"{e}: save it again from Jupyter and resubmit."
