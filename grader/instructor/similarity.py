"""Similar code between the students of a class, topic by topic, as MOSS and Gradescope show
it: which pairs of students wrote more of a topic alike than independent work explains, and a
side-by-side page of each such pair with the shared code marked.

Fingerprints come from copydetect (winnowed k-grams of the token stream, with variable,
function and class names replaced by placeholders, so renaming and reordering functions do not
hide copying; comments and blank lines never count). The released stub of the topic is
boilerplate: what every student was given (docstrings, signatures, imports) is removed from
every fingerprint, so two students who filled the same stubs differently share nothing.

Every pair is compared at once: a matrix product of who holds which shared fingerprint gives
each pair's count, so a class of 1,000 costs the fingerprinting, not a million comparisons;
copydetect's own pairwise comparison runs only for the pages of the pairs listed. A fingerprint
most of the class shares is the course's idiom, not copying: it does not count
(`COMMON_FRACTION`), as MOSS ignores passages too many files contain.
"""

from __future__ import annotations

import html
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import copydetect
import numpy as np
from copydetect.utils import filter_code, get_token_coverage, winnow

from grader.atomic import write_atomic
from grader.text import clean_text

NOISE_TOKENS = 25  # k: shorter matches are never counted (copydetect's default)
GUARANTEE_TOKENS = 30  # a shared run this long is always found (window = guarantee - noise + 1)
COMMON_FRACTION = 0.5  # a fingerprint in more than half the class is an idiom, not a lead,
COMMON_MIN = 10  # once more than this many students hold it


@dataclass(frozen=True)
class Pair:
    """Two students' code of one topic: the share of each one's fingerprints found in the
    other's, and how many they share."""

    topic: str
    a: str
    b: str
    share_a: float
    share_b: float
    shared: int  # fingerprints in common (each stands for a run of about NOISE_TOKENS tokens)

    @property
    def similarity(self) -> float:
        """The larger share: one student copying all of a classmate's shorter code counts."""
        return max(self.share_a, self.share_b)


WINDOW = GUARANTEE_TOKENS - NOISE_TOKENS + 1


@dataclass(frozen=True)
class Fingerprint:
    """One student's code of a topic as copydetect's `compare_files` reads it (the attributes of
    its CodeFingerprint), built with a stable hash of each k-gram: copydetect's own uses
    Python's `hash`, which changes with every process (PYTHONHASHSEED), so the same class could
    be flagged in one run and not in the next."""

    raw_code: str
    filtered_code: str
    offsets: np.ndarray
    hashes: set[int]
    hash_idx: dict[int, list[int]]
    k: int
    token_coverage: int


# A k-gram's hash: its characters' code points times fixed odd 64-bit coefficients, summed with
# the wrap-around of int64 arithmetic. Deterministic, and one vectorised product per document.
_COEFFICIENTS = np.random.default_rng(20261203).integers(
    1, 2**62, size=NOISE_TOKENS, dtype=np.int64) * 2 + 1


def _kgram_hashes(doc: str, k: int) -> np.ndarray:
    if len(doc) < k:
        return np.array([], dtype=np.int64)
    points = np.frombuffer(doc.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    n = len(points) - k + 1
    hashes = np.zeros(n, dtype=np.int64)
    with np.errstate(over="ignore"):  # one pass per position in the k-gram: memory stays O(n)
        for j in range(k):
            hashes += points[j:j + n] * _COEFFICIENTS[j]
    return hashes


def _fingerprint(code: str, boilerplate: set[int]) -> Fingerprint:
    """copydetect's filtering (names replaced, comments and layout dropped) and winnowing, our
    hash; fingerprints the released stub has are left out."""
    logging.getLogger().disabled, was = True, logging.getLogger().disabled  # its lexer warnings
    try:
        filtered, offsets = filter_code(code, "submission.py")
    finally:
        logging.getLogger().disabled = was
    hashes = _kgram_hashes(filtered, NOISE_TOKENS)
    selected, where = (winnow(hashes, WINDOW, remove_duplicates=False) if len(hashes)
                       else (hashes, np.array([], dtype=np.int64)))
    index: dict[int, list[int]] = defaultdict(list)
    for h, i in zip(selected.tolist(), where.tolist(), strict=True):
        if h not in boilerplate:
            index[h].append(i)
    return Fingerprint(code, filtered, offsets, set(index), dict(index), NOISE_TOKENS,
                       int(get_token_coverage(index, NOISE_TOKENS, len(filtered))))


def fingerprints(sources: Mapping[str, str], stub: str) -> dict[str, Fingerprint]:
    """Each student's fingerprint of one topic, the stub's own removed as boilerplate."""
    boilerplate = _fingerprint(stub, set()).hashes
    return {student: _fingerprint(code, boilerplate) for student, code in sources.items()}


def shared_fingerprints(hashes: list[set[int]]) -> np.ndarray:
    """An n x n matrix: how many fingerprints each pair of students shares. Only fingerprints
    two or more students hold become columns, and none more than COMMON_FRACTION of the class
    (and COMMON_MIN students) holds: an idiom, not a lead. The matrix product stays small."""
    held = Counter(h for student in hashes for h in student)
    most = max(COMMON_MIN, int(COMMON_FRACTION * len(hashes)))
    column = {h: j for j, h in enumerate(h for h, n in held.items() if 2 <= n <= most)}
    holds = np.zeros((len(hashes), len(column)), dtype=np.float32)
    for i, student in enumerate(hashes):
        holds[i, [column[h] for h in student if h in column]] = 1.0
    return holds @ holds.T


def similar_pairs(topic: str, sources: Mapping[str, str], stub: str, threshold: float,
                  min_shared: int = 1) -> list[Pair]:
    """The pairs of one topic whose similarity is at least `threshold` (0..1) over at least
    `min_shared` shared fingerprints, most similar first."""
    names = sorted(sources)
    prints = fingerprints(sources, stub)
    hashes = [prints[s].hashes for s in names]
    shared = shared_fingerprints(hashes)
    sizes = np.array([max(1, len(h)) for h in hashes], dtype=np.float32)
    shares = shared / sizes[:, None]  # row i: the share of i's fingerprints in each other's
    best = np.maximum(shares, shares.T)
    hits = np.argwhere(np.triu((best >= threshold) & (shared >= max(1, min_shared)), k=1))
    pairs = [Pair(topic, names[i], names[j], float(shares[i, j]), float(shares[j, i]),
                  int(shared[i, j])) for i, j in hits]
    return sorted(pairs, key=lambda p: (-p.similarity, p.topic, p.a, p.b))


def highest(pairs: Iterable[Pair]) -> dict[str, float]:
    """Each student's highest similarity over the pairs given."""
    best: dict[str, float] = {}
    for p in pairs:
        for s in (p.a, p.b):
            best[s] = max(best.get(s, 0.0), p.similarity)
    return best


SIDE_BY_SIDE_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 13px; line-height: 1.35; }
mark { background: #ffd27a; }
"""


def side_by_side(pair: Pair, code_a: str, code_b: str, stub: str) -> str:
    """An HTML page with both students' code of the topic, the shared parts marked. Every piece
    of student text is cleaned (`clean_text`: a bidi override or a zero-width space in code is
    shown escaped where it hides, not made to reorder what is read) and escaped: code and
    names are text, never markup."""
    code_a, code_b = clean_text(code_a), clean_text(code_b)
    prints = fingerprints({"a": code_a, "b": code_b}, stub)
    _, _, (slices_a, slices_b) = copydetect.compare_files(prints["a"], prints["b"])

    def marked(code: str, slices: np.ndarray) -> str:
        if slices.size == 0:
            return html.escape(code)
        text, _ = copydetect.utils.highlight_overlap(code, slices, "<mark>", "</mark>",
                                                     escape_html=True)
        return text

    def e(text: str) -> str:
        return html.escape(clean_text(text))

    title = f"{pair.topic}: {pair.a} and {pair.b}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{e(title)}</title><style>{SIDE_BY_SIDE_CSS}</style></head><body>
<h1>{e(title)}</h1>
<p>{pair.share_a:.0%} of {e(pair.a)}'s code and {pair.share_b:.0%} of {e(pair.b)}'s is shared
({pair.shared} fingerprints), with names replaced and the released stub left out. Marked: the shared
parts. Similar code is a reason to look, not proof: read both before you decide.</p>
<div class="cols">
<div><h2>{e(pair.a)}</h2><pre>{marked(code_a, slices_a)}</pre></div>
<div><h2>{e(pair.b)}</h2><pre>{marked(code_b, slices_b)}</pre></div>
</div></body></html>
"""


@dataclass(frozen=True)
class ClassSimilarity:
    """The pairs of a class at or above the course's threshold (most similar first), the page
    of each of the first MAX_PAGES (relative to the class page), and every student's highest
    similarity over all pairs compared, listed or not."""

    pairs: list[Pair]
    pages: dict[Pair, str]
    highest: dict[str, float]


PAGES = "similarity"  # the folder beside the class page that holds the side-by-side pages


MAX_PAGES = 200  # side-by-side pages for the most similar pairs; the rest are counted


def compare_class(code: Mapping[str, Mapping[str, str]], stubs: Mapping[str, str],
                  threshold: float, min_shared: int, out: Path) -> ClassSimilarity:
    """Compare every pair of students per topic (`code`: student -> topic -> source; `stubs`:
    topic -> the released stub) and write a side-by-side page of each listed pair to
    `out/similarity/` (pages are numbered: a student's name is never a path)."""
    compared: list[Pair] = []
    for topic, stub in stubs.items():
        sources = {s: topics[topic] for s, topics in code.items() if topics.get(topic)}
        compared += similar_pairs(topic, sources, stub, 0.0, min_shared)
    listed = sorted((p for p in compared if p.similarity >= threshold),
                    key=lambda p: (-p.similarity, p.topic, p.a, p.b))
    pages = {}
    for n, pair in enumerate(listed[:MAX_PAGES], start=1):
        href = f"{PAGES}/{n}.html"
        write_atomic(out / href, side_by_side(pair, code[pair.a][pair.topic],
                                              code[pair.b][pair.topic], stubs[pair.topic]))
        pages[pair] = href
    for stale in sorted((out / PAGES).glob("*.html")) if (out / PAGES).is_dir() else []:
        if f"{PAGES}/{stale.name}" not in pages.values():
            stale.unlink()  # a pair listed by an earlier run and no longer
    return ClassSimilarity(listed, pages, highest(compared))
