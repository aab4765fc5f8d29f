"""`make bench`: what the class similarity report costs for a class of 1,000.

Each synthetic student hands in every topic as the reference with a random few of the variants
suite's rewrites and mistakes applied and a helper of their own added, so most pairs share
most of their code: far more pairs to compare in full than a real class, where most students
write their own. Prints the seconds to fingerprint and compare them all, per topic and in all.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import tempfile
import time
from pathlib import Path

from grader.course import KIT_ROOT, load_course
from grader.instructor.similarity import compare_class
from grader.instructor.sync import expected_stubs

TARGET_S = 120.0  # a class of 1,000, all topics, on one core: small beside grading it


def class_code(students: int, seed: int = 0) -> dict[str, dict[str, str]]:
    """student -> topic -> source, each the reference with random variants applied."""
    from tests.kit.variants import replace_definitions  # the kit's own suite, for realism

    rng = random.Random(seed)
    topics = [t.name for t in load_course().topics]
    suites = {t: importlib.import_module(f"tests.kit.variants_{t}") for t in topics}
    references = {t: (KIT_ROOT / "solutions" / f"{t}.py").read_text() for t in topics}
    code: dict[str, dict[str, str]] = {}
    for i in range(students):
        mine = {}
        for t in topics:
            pool = suites[t].CORRECT + suites[t].MISTAKES
            text = references[t]
            for variant in rng.sample(pool, k=min(len(pool), rng.randint(0, 3))):
                text = replace_definitions(text, variant.source)
            mine[t] = text + f"\n\ndef _mine_{i}(x):\n    return x * {rng.random():.6f}\n"
        code[f"s{i:04d}"] = mine
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.instructor.bench_similarity",
                                     description=__doc__)
    parser.add_argument("--students", type=int, default=1000)
    args = parser.parse_args(argv)
    code = class_code(args.students)
    stubs = {f.removesuffix(".py"): text for f, text in expected_stubs().items()}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        found = compare_class(code, stubs, load_course().similarity.threshold,
                              load_course().similarity.min_shared, Path(out))
        elapsed = time.perf_counter() - start
    print(f"similarity: {args.students} students x {len(stubs)} topics in {elapsed:.1f} s "
          f"(target {TARGET_S:.0f} s); {len(found.pairs)} pairs at the threshold")
    return 0 if elapsed <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
