"""`python grader/python_check.py`: the Makefiles' first step, run with whatever Python is at
hand before any environment exists (it imports nothing of the kit): one clear line when that
Python is not the 3.11 the pinned torch needs, instead of minutes of pip resolving."""

import sys

NEEDED = (3, 11)


def main() -> int:
    found = sys.version_info[:2]
    if found == NEEDED:
        return 0
    print(f"torchdrill needs Python {NEEDED[0]}.{NEEDED[1]} (its pinned torch is built for it); "
          f"{sys.executable} is {found[0]}.{found[1]}. Install Python 3.11 (python.org, "
          "`apt install python3.11-venv`, `brew install python@3.11` or `pyenv install 3.11`) "
          "and run make again, or name it: `make grade PYTHON=/path/to/python3.11`.",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
