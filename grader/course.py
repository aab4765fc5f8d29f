"""The course definition (`course.toml`): topics in order, titles, points, time limits, the
calls each function may not use and the arguments it updates in place."""

from __future__ import annotations

import ast
import functools
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

KIT_ROOT = Path(__file__).resolve().parent.parent
# The instructor's code, in the repository only: the student kit leaves it out, and a worker
# never sees it (grader.sandbox.fsroot binds grader/ without it).
INSTRUCTOR_ONLY = ("grader/instructor", "grader/nbexecute.py")
# Another course file (a shorter time limit, a topic that allows a step outside [source]) can
# be named by whoever runs the grader; student code never sees or sets the grader's environment.
COURSE_FILE = Path(os.environ.get("TORCHDRILL_COURSE") or KIT_ROOT / "course.toml")
# What the course makes of its GPU tests (`@pytest.mark.gpu`), course.toml's [gpu] tests:
# "where-cuda": counted where CUDA exists, elsewhere skipped and listed as not counted;
# "counted": part of every grade, so only a machine with CUDA grades (`batch` refuses
# elsewhere; a student's own `grade` skips them and says the course counts them);
# "omitted": not part of the course, never run and in no maximum.
GpuTests = Literal["where-cuda", "counted", "omitted"]
GPU_SETTINGS: tuple[GpuTests, ...] = get_args(GpuTests)
# Overrides course.toml's [gpu] tests for one run: a released nbgrader notebook's checks grade
# with the setting the notebook was released with (grader.nbcheck).
GPU_TESTS_ENV = "TORCHDRILL_GPU_TESTS"


@dataclass(frozen=True)
class Topic:
    name: str
    title: str
    points: float
    call_timeout_s: float
    forbidden: tuple[str, ...] = ()
    functions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    in_place: dict[str, tuple[str, ...]] = field(default_factory=dict)
    allow: tuple[str, ...] = ()  # steps outside [source] this topic may take (allowlist.Step kind)
    given: tuple[str, ...] = ()  # helpers the stub gives complete: no test, no cell of checks

    def forbidden_for(self, function: str) -> tuple[str, ...]:
        """Topic-wide forbidden calls plus those listed for `function`."""
        return self.forbidden + tuple(n for n in self.functions.get(function, ())
                                      if n not in self.forbidden)

    def parameters(self, function: str) -> tuple[str, ...]:
        """`function`'s parameter names as the reference spells them (empty when the reference
        has no such function). A test passes arguments by the contract's positions and names,
        so these, never the student's, say which argument a tensor is."""
        return reference_parameters(self.name).get(function, ())


@dataclass(frozen=True)
class Similarity:
    """When `grader batch` lists a pair of students as similar (course.toml's [similarity])."""

    threshold: float = 0.6  # share of one student's fingerprints of a topic in the other's
    min_shared: int = 15  # and at least this many fingerprints in common


@dataclass(frozen=True)
class SourceRules:
    """What a submission's source may contain (course.toml's [source]; checked by
    `grader.scan.allowlist` in the grader and, below Python, by the worker's audit hook)."""

    # modules a submission may import: a name covers itself; `name.*` its submodules too
    imports: tuple[str, ...] = ()
    # public names inside those modules that reach around the rules (they evaluate strings,
    # unpickle, or compile past the dispatcher): `typing.get_type_hints`, `torch.compile`
    refused: tuple[str, ...] = ()

    def allows_import(self, module: str) -> bool:
        """Whether `module` (dotted) may be imported: listed itself, under a listed `name.*`,
        or a package above a listed module (`torch.utils` for `torch.utils.data`)."""
        for pattern in self.imports:
            if pattern.endswith(".*"):
                base = pattern[:-2]
                if module == base or module.startswith(base + "."):
                    return True
            elif module == pattern or pattern.startswith(module + "."):
                return True
        return False


@dataclass(frozen=True)
class Course:
    name: str
    title: str
    limits: dict
    topics: tuple[Topic, ...]
    similarity: Similarity = Similarity()
    gpu_tests: GpuTests = "where-cuda"  # one of GPU_SETTINGS (course.toml's [gpu] tests)
    source: SourceRules = SourceRules()

    def topic(self, name: str) -> Topic:
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(f"no topic {name!r} in course.toml (topics: {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.topics]

    @property
    def threads(self) -> int:
        """torch threads of each grading process and worker ([limits] threads)."""
        return int(self.limits.get("threads", 1))

    def with_call_timeout(self, seconds: float) -> Course:
        """The same course with every topic's per-call limit set to `seconds`, and no test
        budgets (`grader.budgets`): a limit given by hand is the limit."""
        limits = {k: v for k, v in self.limits.items()
                  if k not in ("test_floor_s", "test_multiplier")}
        return replace(self, limits=limits, topics=tuple(replace(t, call_timeout_s=seconds)
                                                         for t in self.topics))

    def all_forbidden(self) -> set[str]:
        return {n for t in self.topics for n in t.forbidden} | {
            n for t in self.topics for names in t.functions.values() for n in names}


def load_course(path: Path = COURSE_FILE) -> Course:
    data = tomllib.loads(path.read_text())
    limits = data["limits"]
    topics = tuple(
        Topic(name=t["name"], title=t["title"], points=float(t["points"]),
              call_timeout_s=float(t.get("call_timeout_s", limits["call_timeout_s"])),
              forbidden=tuple(t.get("forbidden", ())),
              functions={f: tuple(spec.get("forbidden", ()))
                         for f, spec in t.get("functions", {}).items()},
              in_place={f: tuple(spec["in_place"])
                        for f, spec in t.get("functions", {}).items() if "in_place" in spec},
              allow=tuple(t.get("allow", ())), given=tuple(t.get("given", ())))
        for t in data["topics"])
    return Course(name=data["course"]["name"], title=data["course"]["title"], limits=limits,
                  topics=topics, similarity=Similarity(**data.get("similarity", {})),
                  gpu_tests=gpu_setting(data.get("gpu", {}).get("tests", "where-cuda"), path),
                  source=SourceRules(**{k: tuple(v) for k, v in data.get("source", {}).items()}))


def gpu_setting(value: object, path: Path | None = None) -> GpuTests:
    """course.toml's [gpu] tests, or the GPU_TESTS_ENV override when set; checked."""
    override = os.environ.get(GPU_TESTS_ENV)
    where = f"{GPU_TESTS_ENV}={override!r}" if override else f"[gpu] tests in {path}"
    value = override or value
    if value not in GPU_SETTINGS:
        raise ValueError(f"{where}: must be one of " + ", ".join(map(repr, GPU_SETTINGS))
                         + f", not {value!r}")
    return value


@functools.cache
def reference_parameters(topic: str) -> dict[str, tuple[str, ...]]:
    """Positional parameter names of each top-level function of the topic's reference, read
    from its source (never run): `solutions/<topic>.py`, or in a kit shipped without the
    reference, the stub generated from it in `exercises/`."""
    for folder in ("solutions", "exercises"):
        path = KIT_ROOT / folder / f"{topic}.py"
        if path.is_file():
            tree = ast.parse(path.read_text(), str(path))
            return {node.name: tuple(a.arg for a in (*node.args.posonlyargs, *node.args.args))
                    for node in tree.body if isinstance(node, ast.FunctionDef)}
    return {}
