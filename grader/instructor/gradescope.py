"""`make gradescope`: an autograder zip that Gradescope takes as it is (its autograder
specification: `setup.sh` and `run_autograder` at the zip's root; the zip's contents land in
/autograder/source, the student's files in /autograder/submission, and run_autograder must
leave /autograder/results/results.json).

The zip holds what grading needs and nothing more: the grader without the instructor's code
(as the student kit has it), torchdrill, the public and hidden tests, course.toml, pyproject.toml
and the stubs generated from the solutions (which give the functions' signatures); never the
solutions. `setup.sh` (run once, as root, when Gradescope builds the image) installs Python
3.11 and the kit's pinned dependencies, torch's CPU wheels (Gradescope's machines have no
GPU); it cannot be run here, only on Gradescope's Ubuntu image. `run_autograder` grades the
submission with `python -m grader grade` (all suites, the topics the zip was made for) and
copies its results.json, whose tests' visibility follows course.toml's [gradescope] (hidden
tests `after_published` by default); if grading itself fails it writes a results.json that
says so. `AUTOGRADER_ROOT` stands in for /autograder and `AUTOGRADER_PYTHON` for the Python
setup.sh installed, so the same script runs in a simulated layout.
"""

from __future__ import annotations

import io
import re
import shlex
import tomllib
import zipfile
from pathlib import Path

from grader.atomic import write_atomic
from grader.course import COURSE_FILE, KIT_ROOT, load_course
from grader.instructor.release import STUDENT_FILES, STUDENT_TREES, student_files
from grader.instructor.sync import expected_stubs

TREES = (*STUDENT_TREES, "tests/hidden")
SCRIPT_MODE = 0o755 << 16  # a zip entry's unix mode: rwxr-xr-x, for setup.sh and run_autograder
FILE_MODE = 0o644 << 16
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # every entry's time: the same kit gives the same zip

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image: Python 3.11 and the kit's pinned
# dependencies in /autograder/venv (torch's CPU wheels: Gradescope's machines have no GPU).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
if ! apt-get install -y --no-install-recommends python3.11 python3.11-venv; then
  apt-get install -y --no-install-recommends software-properties-common
  add-apt-repository -y ppa:deadsnakes/ppa
  apt-get update
  apt-get install -y --no-install-recommends python3.11 python3.11-venv
fi
python3.11 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu {torch}
/autograder/venv/bin/pip install -e /autograder/source
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission with the kit in
# /autograder/source and leave /autograder/results/results.json. AUTOGRADER_ROOT and
# AUTOGRADER_PYTHON stand in for /autograder and setup.sh's Python (a simulated layout).
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PY="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
mkdir -p "$ROOT/results"
cd "$ROOT/source" || exit 1
rm -rf "$ROOT/results/report"
"$PY" -m grader grade "$ROOT/submission" --suite all {topics}--out "$ROOT/results/report"
status=$?
if [ -f "$ROOT/results/report/results.json" ]; then
  cp "$ROOT/results/report/results.json" "$ROOT/results/results.json"
else
  "$PY" - "$ROOT/results/results.json" "$status" <<'EOF'
import json, sys
json.dump({{"score": 0.0, "execution_time": 0, "visibility": "visible",
           "stdout_visibility": "hidden", "tests": [],
           "output": "The autograder could not grade this submission (grader exit status "
                     f"{{sys.argv[2]}}): this is the grader's failure, not yours. Your "
                     "instructor will see it and grade your work again."}},
          open(sys.argv[1], "w"))
EOF
fi
"""


def pinned(name: str) -> str:
    """`name==version` as pyproject.toml pins it."""
    deps = tomllib.loads((KIT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        if re.fullmatch(rf"{re.escape(name)}\s*==\s*[\w.]+", dep):
            return dep.replace(" ", "")
    raise ValueError(f"pyproject.toml pins no {name}==VERSION")


def autograder_files(topics: list[str] | None = None) -> dict[str, bytes]:
    """The zip's entries by name: the scripts, the kit's trees and files, the stubs."""
    course = load_course()
    for topic in topics or []:
        course.topic(topic)  # KeyError names the course's topics
    chosen = f"--topics {shlex.quote(','.join(topics))} " if topics else ""
    files = {"setup.sh": SETUP_SH.format(torch=" ".join(map(pinned, ("torch", "torchvision"))))
             .encode(),
             "run_autograder": RUN_AUTOGRADER.format(topics=chosen).encode()}
    for tree in TREES:
        files |= {str(p.relative_to(KIT_ROOT)): p.read_bytes() for p in student_files(tree)}
    files |= {name: (KIT_ROOT / name).read_bytes() for name in STUDENT_FILES}
    files["course.toml"] = COURSE_FILE.read_bytes()  # the course being graded (TORCHDRILL_COURSE)
    files |= {f"exercises/{name}": stub.encode()
              for name, stub in expected_stubs(KIT_ROOT / "solutions").items()}
    return files


def build_autograder(out: Path, topics: list[str] | None = None) -> Path:
    """Write the autograder zip to `out` (scripts executable, entries sorted and dated the
    same, so the same kit gives the same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(autograder_files(topics).items()):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = SCRIPT_MODE if name in ("setup.sh", "run_autograder") \
                else FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return write_atomic(out, buf.getvalue())
