"""Text a submission controls, made safe to print and to write into a report.

A student's exception message, printed output, file names or an object's repr can carry
terminal escape codes (move the cursor, clear the screen, recolour a line) and control
characters (a carriage return that overwrites "Total 3/109" with "Total 109/109"). The
grader removes them from everything it shows, so the console, Markdown, HTML and Gradescope
all show the text itself and nothing it could make a terminal do.
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


def clean_text(text: str) -> str:
    """`text` without ANSI escape sequences and control characters (tab and newline stay)."""
    return _ESCAPES.sub("", text)
