"""Reading a submission into module sources: the worker gets text, never a path, so it needs
no access to the submission's folder (or anyone else's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    """A folder of `<topic>.py` files (or one such file)."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"no submission at {path}")
    sub = Submission(name=path.stem if path.is_file() else path.name, path=path)
    files = [path] if path.is_file() else sorted(path.glob("*.py"))
    for f in files:
        _add_python(sub, f)
    return sub


def _add_python(sub: Submission, f: Path) -> None:
    try:
        text = f.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        sub.problems[f.stem] = f"{f.name} is not UTF-8 text"
        return
    except OSError as e:
        sub.problems[f.stem] = f"{f.name} could not be read: {e.strerror}"
        return
    sub.sources[f.stem] = (str(f), text)
