"""Download MNIST and/or Fashion-MNIST into the data root with torchvision (make data).

    python datasets/fetch.py [--root DIR] [mnist|fashion-mnist|all]

``--root`` defaults to torchdrill's data root: ``$TORCHDRILL_DATA`` if set, else
``datasets/data`` in this repository. Files land where torchvision puts them
(``<root>/MNIST/raw/...``, ``<root>/FashionMNIST/raw/...``) and where ``torchdrill.data``
looks for them. Already-downloaded files are checked and kept. Offline, it prints one line
saying so and exits with status 1; see datasets/README.md for what the loaders do then.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from urllib.error import URLError

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
TIMEOUT_S = 30  # per network operation, so an offline machine fails fast instead of hanging


def _data_root() -> Path:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from torchdrill.data import download_root

    return download_root()


def fetch(name: str, root: Path) -> str:
    """Download one dataset's train and test splits; return a one-line summary. A download
    that fails leaves the data root as it found it (torchvision makes its folders first)."""
    from torchvision import datasets

    cls = getattr(datasets, DATASETS[name])
    before = _paths(root)
    try:
        sizes = [len(cls(root=str(root), train=train, download=True)) for train in (True, False)]
    except BaseException:
        _remove_new(root, before)
        raise
    return f"{DATASETS[name]}: {sizes[0]} training and {sizes[1]} test images in {root}"


def _paths(root: Path) -> set[Path]:
    return set(root.rglob("*")) if root.is_dir() else set()


def _remove_new(root: Path, before: set[Path]) -> None:
    """Remove what appeared under `root` (and `root` itself, if it did) since `before`."""
    for path in sorted(_paths(root) - before, key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink(missing_ok=True)
    if not before and root.is_dir() and not any(root.iterdir()):
        root.rmdir()


def _reason(err: BaseException) -> str:
    """One line for an error. torchvision's RuntimeError lists each mirror it tried with
    what it got ("Tried URL, got:" then the error); keep the first line and the last error."""
    lines = [line.strip() for line in str(getattr(err, "reason", None) or err).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return type(err).__name__
    if len(lines) > 1 and lines[-2].endswith("got:"):
        return f"{lines[0].rstrip(':')}: {lines[-1]}"
    return lines[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default="all", choices=[*DATASETS, "all"])
    parser.add_argument(
        "--root", type=Path, help="data root (default: $TORCHDRILL_DATA, else datasets/data)"
    )
    args = parser.parse_args(argv)
    root = (args.root if args.root is not None else _data_root()).expanduser()
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    socket.setdefaulttimeout(TIMEOUT_S)
    for name in names:
        try:
            print(fetch(name, root), flush=True)
        except (URLError, OSError, RuntimeError) as err:
            # torchvision wraps failed downloads in RuntimeError; a read-only root is an OSError
            print(
                f"fetch.py: could not get {DATASETS[name]} into {root} "
                f"(offline, or the folder is not writable?): {_reason(err)}. Without it the "
                "loaders use what is there or fall back (datasets/README.md).",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
