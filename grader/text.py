"""Text a submission controls, made safe to print and to write into a report.

A student's exception message, printed output, file names or an object's repr can carry
terminal escape codes (move the cursor, clear the screen, recolour a line) and control
characters (a carriage return that overwrites "Total 3/109" with "Total 109/109"). The
grader removes them from everything it shows, so the console, Markdown, HTML and Gradescope
all show the text itself and nothing it could make a terminal do.

Characters that are invisible but reorder or hide what is shown (U+202E RIGHT-TO-LEFT
OVERRIDE turns "alice_0_of_10" into a different-looking string; a zero-width space makes two
names look equal) are shown escaped, `\\u202e`, as are the bytes of a file name that is not
UTF-8 (`caf\\xe9`, as Python's surrogateescape keeps them): every report format, the class
page, the gradebook and the console show where they were, and none of them fails to encode.
"""

from __future__ import annotations

import re

# ANSI escape sequences as a whole (CSI with its parameters, OSC/DCS/APC/PM/SOS strings up to
# their terminator, two-character escapes), then any control character left: C0 except tab
# and newline, DEL, and C1 (0x80-0x9f, where 0x9b alone starts a CSI on some terminals).
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI: ESC [ or 0x9b, parameters, final byte
    r"|(?:\x1b[]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # strings
    r"|\x1b[ -/]*[0-~]?"  # other escapes: ESC, intermediates, final byte
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
# Unicode's format characters (category Cf: bidi embeddings, overrides and isolates, zero-width
# spaces and joiners, the byte-order mark, invisible operators, tags) and line and paragraph
# separators (Zl, Zp), as of Python 3.11's Unicode 14; tests/kit/test_batch_hostile_round3.py
# derives the set from unicodedata and checks it. Lone surrogates are a name's bytes that are
# not UTF-8, as surrogateescape keeps them.
INVISIBLE = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
_INVISIBLE = re.compile(f"[{INVISIBLE}\ud800-\udfff]")
# What a name must escape to be a folder name and a gradebook cell that reads as what it is:
# the invisible characters, every control character, and the backslash that starts an escape
# (so that two different names never escape to the same text).
_UNSAFE_IN_NAME = re.compile(f"[{INVISIBLE}\ud800-\udfff\\x00-\\x1f\\x7f-\\x9f\\\\]")


def escaped(char: str) -> str:
    """`char` as the text of its escape: a byte kept by surrogateescape as `\\xe9`, any other
    character as `\\u202e` (or `\\U000e0001`), a backslash as two."""
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def clean_text(text: str) -> str:
    """`text` without ANSI escape sequences and control characters (tab and newline stay), its
    invisible characters and undecodable bytes shown escaped."""
    return _INVISIBLE.sub(lambda m: escaped(m.group()), _ESCAPES.sub("", text))


def safe_name(name: str) -> str:
    """`name` (a file name, bytes that are not UTF-8 kept by surrogateescape) as text every
    format can show, with every character that could hide, reorder or control what is shown
    escaped. Different names give different texts, and the name can be read back from it."""
    return _UNSAFE_IN_NAME.sub(lambda m: escaped(m.group()), name)
