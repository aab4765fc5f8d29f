"""The worker's backstop below Python: a PEP 578 audit hook, installed before any student code
runs and removable by no API, that refuses what no exercise needs when student code asks for
it: frames and code objects, the garbage collector's view of objects, imports outside
course.toml's list, compiling or running code that is not the submission's, pickled objects
from elsewhere, processes, sockets, ctypes, tracing and audit hooks, input(), and code loaded
from outside the Python installation.

Whose event. CPython raises an event from inside the operation, so the hook judges it by the
code that caused it: walking outwards from the nearest frame, it skips the frames that act on
their caller's behalf, and the first frame left owns the event. It is the student's when that
frame's code was compiled from the submission (a module or a notebook cell) or from a file
outside the installation (only a file written while grading can be there). Acting for the
caller:
- the standard library (`importlib.import_module`, `pydoc.locate`, `inspect.currentframe`,
  `traceback.walk_stack`, `typing.get_type_hints`, `subprocess.run`), except a module's
  top-level code (it runs at import, which was judged) and, per event, the modules that do it
  for their own use: `collections` (namedtuple), `typing` and `enum` read a caller's module
  name from its frame; `collections` and `dataclasses` compile code they generate from
  identifiers; `typing` and `ast` compile strings without running them; `encodings` imports
  codecs;
- the import machinery, for imports (it owns the rest of a module's loading);
- code generated from strings (`<string>`, `<unknown>`: its generator's frame is further out);
- for running code (exec, compile, code and function objects, marshal), starting programs,
  tracing and adding audit hooks, which library code does only while it is being imported:
  every library frame but top-level code, the grader's included. Such an event that nobody
  owns (a thread's, a finalizer's, a callback's: `Thread(target=exec)`) is the student's too,
  and so torch.fx's exec or a pickled `eval` reached from student code.
A library otherwise owns what it does, with student code on the stack or not: torch's lazy
imports, matplotlib reading frames, numpy opening files, torch's DataLoader forking workers.
Two events are judged by what they name as well:
- a new import owned by the student (the import machinery about to run a module it found, or
  to load an extension module's file) must be of a module it may import, or a private module
  of such a package (numpy's C code imports `numpy._core.arrayprint` from the student's frame
  when an array is first printed). A module that does not exist fails as Python says; one
  already imported raises no event at all (`import sys` is the source scan's to refuse);
- an unpickled global, whoever unpickles, outside the grader's own requests, must be a plain
  name (no dots, no module) in a module a submission may import, in torch or numpy (DataLoader
  workers send tensors and arrays back pickled) or in a few of Python's own, and no builtin
  that reaches around: a pickle is data a student can write.
Not refused: `os.fork` (a copy of the worker keeps the hook, the guards and the limits, and
torch's DataLoader forks its workers; a refusal inside the copy fails there unreported), and
opening files (the worker's root is the allow-list; torch's warnings read source lines).

A refusal is recorded in the hook's window (drained into the request's hits by
`Backstop.collect`) before it raises, so catching the exception changes nothing: the call
fails as forbidden and is flagged. The hook's data lives in closures made at `install`: frozen
sets, tuples, copies of the tables below, and the window, which only the hook (held by the
interpreter, out of Python's reach) and the `Backstop` (held by the worker, which no student
object refers to) reach.

What this leaves to the source scan, for code that may do anything Python allows: importing a
module already imported, and attribute walks, raise no event (`import sys`, `torch.sys.modules`,
`__subclasses__()`, `__globals__`), and they reach every module, the dispatcher guard's state
and this module's globals included; a library in the installation that hands its caller a
frame is trusted; a thread or finalizer that calls a library's frame or gc function directly
is nobody's, and allowed; `_posixsubprocess` starts programs without an event; numpy's
`as_strided` reads and writes memory beyond an array. Out of reach: memory through ctypes or
`/proc/self/mem` (root's once the worker is not dumpable), native code or Python loaded from a
file the student wrote, student finalizers run by the collector while the hook judges (it
holds the collector off), and every event above.
"""

from __future__ import annotations

import _thread
import gc
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import CodeType, FrameType, ModuleType
from typing import NamedTuple

from grader.course import KIT_ROOT, SourceRules
from grader.sandbox.execute import is_submission_file, submission_code, submission_files
from grader.sandbox.forbidden import MAX_HITS, ForbiddenCallError
from grader.sandbox.fsroot import KIT_PUBLIC, SYSTEM

# What each family of refused events is, in the flag and the test's message (the call first)
NAMES = {
    "frames": "frames and code objects are not for graded code",
    "gc": "the garbage collector's objects are not for graded code",
    "import": "a module outside course.toml's imports",
    "code": "code from a string or a code object",
    "pickle": "a pickled object from outside the allowed modules",
    "process": "running programs is not for graded code",
    "socket": "the network is not for graded code",
    "ctypes": "calling C directly is not for graded code",
    "trace": "tracing and audit hooks are not for graded code",
    "input": "nobody types input while grading",
    "loading": "code from outside the Python installation",
}
# What each family teaches the student code that catches (or prints) the refusal.
MESSAGES = {
    "frames": "frames, tracebacks' frames and code objects (sys._getframe, tb_frame, gi_frame, "
              "__code__) are not available to graded code: nothing an exercise asks for needs "
              "them; work with the values your function receives",
    "gc": "the garbage collector's view of every object (gc.get_objects, gc.get_referrers) is "
          "not available to graded code: keep references to what you need in your own "
          "variables",
    "import": "graded code imports only the modules course.toml lists (torch, numpy, math, "
              "random, matplotlib, torchdrill, ...) and the course's own topic modules",
    "code": "compiling or running code from a string or a code object (eval, exec, compile, "
            "string annotations evaluated, marshal) is not allowed in graded code: write the "
            "code itself",
    "pickle": "while graded code runs, a pickle may hold only torch's, numpy's and the "
              "allowed modules' objects",
    "process": "starting processes or programs is not allowed in graded code",
    "socket": "network access is not allowed in graded code",
    "ctypes": "calling C directly (ctypes) is not allowed in graded code",
    "trace": "tracing, profiling and audit hooks are not available to graded code",
    "input": "input() is not available in graded code: nobody is there to type; take values "
             "as arguments",
    "loading": "code is loaded only from the Python installation, never from a file written "
               "while grading",
}


class Rule(NamedTuple):
    """How an event is judged (see the module docstring): its family (for the message), the
    standard-library modules that own it, whether library frames act for their caller outside
    their top-level code (and an event nobody owns is the student's), whether the import
    machinery owns it."""

    family: str
    stdlib_owners: frozenset[str] = frozenset()
    strict: bool = False
    machinery_owns: bool = True


Judged = tuple[str, frozenset[str], bool, bool]  # a Rule as the hook holds it: a plain tuple
FRAMES = Rule("frames", frozenset({"collections", "typing", "enum"}))
CODE = Rule("code", strict=True)
PROCESS = Rule("process", strict=True)
RULES: dict[str, Rule] = {
    **dict.fromkeys(("sys._getframe", "sys._current_frames", "sys._current_exceptions",
                     "sys._getframemodulename", "object.__getattr__"), FRAMES),
    **dict.fromkeys(("gc.get_objects", "gc.get_referrers", "gc.get_referents"), Rule("gc")),
    "import": Rule("import", frozenset({"encodings"}), machinery_owns=False),
    "compile": Rule("code", frozenset({"collections", "dataclasses", "typing", "ast"}),
                    strict=True),
    "exec": Rule("code", frozenset({"collections", "dataclasses"}), strict=True),
    **dict.fromkeys(("code.__new__", "function.__new__", "object.__setattr__", "marshal.loads",
                     "marshal.load"), CODE),
    "pickle.find_class": Rule("pickle"),
    # not os.fork: a copy of the worker keeps its hook, guards and limits (and DataLoader forks)
    **dict.fromkeys(("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                     "pty.spawn"), PROCESS),
    **dict.fromkeys(("sys.settrace", "sys.setprofile", "sys.addaudithook"),
                    Rule("trace", strict=True)),
    **dict.fromkeys(("builtins.input", "builtins.input/result"), Rule("input")),
    "ctypes.dlopen": Rule("ctypes"),
    "open": Rule("loading"),  # only code files, opened by the import machinery
}
PREFIX_RULES = {"ctypes.": Rule("ctypes"), "socket.": Rule("socket")}
FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "__code__", "gi_code",
                         "cr_code", "ag_code"})  # `object.__getattr__` events refused
MACHINERY_MODULES = frozenset({"importlib", "zipimport"})
REACHING_BUILTINS = frozenset({
    "getattr", "setattr", "delattr", "hasattr", "vars", "globals", "locals", "eval", "exec",
    "compile", "__import__", "open", "input", "breakpoint", "exit", "quit", "help"})
PICKLED_PACKAGES = frozenset({"torch", "numpy"})  # tensors, arrays: rebuilt by private modules
# and of Python's own, those a tensor from a DataLoader worker needs (resource_sharer: the file
# descriptor of its shared memory)
PICKLED_MODULES = frozenset({"builtins", "copyreg", "_codecs", "collections",
                             "multiprocessing.resource_sharer"})
MAX_CACHED = 20_000  # code file names the classifier remembers


class Refused(ForbiddenCallError):
    """Raised into student code for an event the audit hook refuses."""


@dataclass(frozen=True)
class Backstop:
    """The installed hook's handles, for the worker alone: `collect` drains the refusals since
    its last call (a request's hits), `pending` reads them without draining."""

    collect: Callable[[], list[str]]
    pending: Callable[[], tuple[str, ...]]


def _dirs(paths: Iterable[str]) -> tuple[str, ...]:
    """Each existing directory as given and as resolved, with a trailing slash (never the
    root itself, which would hold the private /tmp)."""
    return tuple(sorted({os.path.join(v, "") for p in paths if p and os.path.isdir(p)
                         for v in (os.path.abspath(p), os.path.realpath(p)) if v != "/"}))


def _installation() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the directories of third-party packages and of the kit's public code, those of the
    standard library): where the code that is not the student's comes from."""
    paths = sysconfig.get_paths()
    libraries = _dirs([*site.getsitepackages(), paths["purelib"], paths["platlib"],
                       *(str(KIT_ROOT / name) for name in KIT_PUBLIC)])
    return libraries, _dirs([os.path.dirname(os.__file__)])


def _classifier(sources: dict[str, tuple[str, str]]) -> Callable[[str], tuple[str, str]]:
    """A code object's file name -> (its kind: "student", "library", "stdlib", "machinery" or
    "generated"; the standard-library module's name). Code from an absolute path outside the
    installation is the student's."""
    files, notebooks = submission_files(sources)
    libraries, stdlib = _installation()
    submission, machinery, max_cached = is_submission_file, MACHINERY_MODULES, MAX_CACHED
    cache: dict[str, tuple[str, str]] = {}

    def kind(filename: str) -> tuple[str, str]:
        if submission(filename, files, notebooks):
            return "student", ""
        if filename.startswith("<frozen ") and filename.endswith(">"):
            name = filename[8:-1].partition(".")[0]
            return ("machinery" if name in machinery else "stdlib"), name
        if not filename.startswith("/"):
            return "generated", ""
        if filename.startswith(libraries):
            return "library", ""
        for root in stdlib:
            if filename.startswith(root):
                name = filename[len(root):].partition("/")[0].removesuffix(".py")
                return ("machinery" if name in machinery else "stdlib"), name
        return "student", ""

    def classify(filename: str) -> tuple[str, str]:
        found = cache.get(filename)
        if found is None:
            found = kind(filename)
            if len(cache) < max_cached:
                cache[filename] = found
        return found

    return classify


def install(sources: dict[str, tuple[str, str]], imports: Iterable[str]) -> Backstop:
    """Install the hook for a submission (`sources`: module -> (file name, text), as
    `SubmissionModules` gets them) that may import `imports` (course.toml's list and the
    course's topic modules). In a sandboxed worker only: a hook binds its process for good."""
    classify = _classifier(sources)
    compiled = submission_code(sources)
    compiled_files = frozenset(filename for filename, _ in compiled)
    libraries, stdlib = _installation()
    loadable = (*libraries, *stdlib, *_dirs([sys.prefix, sys.base_prefix, *SYSTEM]))
    grader = _dirs([str(KIT_ROOT / "grader")])
    imported = _import_rule(imports)
    rules: dict[str, Judged] = {event: (*rule,) for event, rule in RULES.items()}
    import_rule = rules["import"]
    prefix_rules = tuple((prefix, (*rule,)) for prefix, rule in PREFIX_RULES.items())
    prefixes = tuple(PREFIX_RULES)
    frame_attrs, max_hits, refused_class = FRAME_ATTRS, MAX_HITS, Refused
    names, messages = dict(NAMES), dict(MESSAGES)
    reaching, pickled_modules, pickled_packages = (REACHING_BUILTINS, PICKLED_MODULES,
                                                   PICKLED_PACKAGES)
    modules, module_type, code_type = sys.modules, ModuleType, CodeType
    getframe, get_ident, realpath = sys._getframe, _thread.get_ident, os.path.realpath
    gc_enabled, gc_disable, gc_enable = gc.isenabled, gc.disable, gc.enable
    window: dict[str, None] = {}  # the refusals since the last collect, each once
    busy: set[int] = set()  # threads inside the hook

    def owner_is_student(frame: FrameType | None, rule: Judged) -> bool:
        """Whether the first frame outwards that does not act for its caller is the
        student's (the module docstring)."""
        _, owners, strict, machinery_owns = rule
        while frame is not None:
            code = frame.f_code
            kind, name = classify(code.co_filename)
            if kind == "student":
                return True
            if kind == "machinery":
                if machinery_owns:
                    return False
            elif kind == "stdlib":
                if name in owners or code.co_name == "<module>":
                    return False
            elif kind == "library" and (not strict or code.co_name == "<module>"):
                return False
            frame = frame.f_back
        return strict  # nobody's: a thread's, a finalizer's or a callback's library call

    def grader_unpickles(frame: FrameType | None) -> bool:
        """Whether the grader's own code runs the unpickler (a request, which it trusts)."""
        return frame is not None and frame.f_code.co_filename.startswith(grader)

    def outside(path: object, roots: tuple[str, ...]) -> bool:
        """Whether `path` (a str; anything else is not judged here) lies outside `roots`."""
        return isinstance(path, str) and not path.startswith(roots) and not realpath(
            path).startswith(roots)

    def unpicklable(module: str, name: str) -> bool:
        """Whether a pickle may resolve `module.name` while student code runs."""
        if "." in name or (module == "builtins" and name in reaching):
            return False
        if not (imported(module) or module in pickled_modules
                or module.partition(".")[0] in pickled_packages):
            return False
        return not isinstance(getattr(modules.get(module), name, None), module_type)

    def loading(frame: FrameType | None) -> str | None:
        """The name of the module whose top-level code the import machinery is about to run
        in `frame` (its `_call_with_frames_removed(exec, code, module.__dict__)`), or None."""
        if frame is None or frame.f_code.co_name != "_call_with_frames_removed" or classify(
                frame.f_code.co_filename)[0] != "machinery":
            return None
        called = frame.f_locals.get("args")
        if isinstance(called, tuple) and len(called) > 1 and isinstance(called[1], dict):
            name = called[1].get("__name__")
            return name if isinstance(name, str) else None
        return None

    def refusal(event: str, args: tuple, rule: Judged,
                frame: FrameType | None) -> tuple[str, str] | None:
        """(what to record, its family) for an event the hook refuses, or None."""
        if event == "import":  # an extension module's file, found
            if outside(args[1], loadable):
                return f"loading {args[1]}", "loading"
            return (f"import {args[0]}", "import") if not imported(
                args[0]) and owner_is_student(frame, rule) else None
        if event == "compile" and isinstance(args[1], str) and classify(args[1])[0] == "student":
            return None if (args[1], args[0]) in compiled else ("compile", "code")
        if event == "exec" and isinstance(args[0], code_type):
            if classify(args[0].co_filename)[0] == "student":
                return None if args[0].co_filename in compiled_files else ("exec", "code")
            name = loading(frame)
            if name is not None:  # a Python module found and about to run: a new import
                return (f"import {name}", "import") if not imported(
                    name) and owner_is_student(frame, import_rule) else None
        if event == "pickle.find_class":  # not one `unpicklable` allows (see the hook)
            return None if grader_unpickles(frame) else (
                f"pickle.find_class({args[0]}.{args[1]})", "pickle")
        if event == "open":  # a code file outside the installation
            return (f"loading {args[0]}", "loading") if frame is not None and classify(
                frame.f_code.co_filename)[0] == "machinery" else None
        if event == "ctypes.dlopen" and isinstance(args[0], str) and "/" in args[0] and \
                outside(args[0], loadable):
            return f"loading {args[0]}", "loading"
        if event in ("object.__getattr__", "object.__setattr__"):
            event = args[1]
        return (event, rule[0]) if owner_is_student(frame, rule) else None

    def hook(event: str, args: tuple) -> None:
        rule = rules.get(event)
        if rule is None:
            if not event.startswith(prefixes):
                return
            rule = next(r for p, r in prefix_rules if event.startswith(p))
        elif event == "object.__getattr__":
            if args[1] not in frame_attrs:
                return
        elif event == "object.__setattr__":
            if args[1] != "__code__":
                return
        elif event == "open" and not outside(args[0], loadable):
            return
        elif event == "import" and not isinstance(args[1], str):  # judged when it is found
            return
        elif event == "pickle.find_class" and unpicklable(*args):  # every request's tensors
            return
        ident = get_ident()
        if ident in busy:  # the hook's own sys._getframe
            return
        busy.add(ident)
        collecting = gc_enabled()
        gc_disable()  # no finalizer of student code runs while its thread is marked busy
        try:
            found = refusal(event, args, rule, getframe(1))
        finally:
            if collecting:
                gc_enable()
            busy.discard(ident)
        if found is not None:
            refuse(*found)

    def refuse(call: str, family: str) -> None:
        flag = f"{call} ({names[family]})"
        if flag not in window and len(window) < max_hits:
            window[flag] = None
        raise refused_class(f"{call}: {messages[family]}.")

    def collect() -> list[str]:
        calls = list(window)
        window.clear()
        return calls

    sys.addaudithook(hook)
    return Backstop(collect, lambda: tuple(window))


def _import_rule(imports: Iterable[str]) -> Callable[[str], bool]:
    """Whether student code may cause a module to be imported: one it may import
    (`SourceRules.allows_import` over `imports`), or a private module of such a package, which
    that package's C code imports on first use with the student's frame the nearest (numpy's
    `_core.arrayprint` when an array is first printed). Each name is decided once."""
    allows, max_cached = SourceRules(tuple(imports)).allows_import, MAX_CACHED
    decided: dict[str, bool] = {}

    def imported(module: str) -> bool:
        found = decided.get(module)
        if found is None:
            top, _, rest = module.partition(".")
            found = allows(module) or (allows(top) and any(p.startswith("_")
                                                           for p in rest.split(".")))
            if len(decided) < max_cached:
                decided[module] = found
        return found

    return imported
