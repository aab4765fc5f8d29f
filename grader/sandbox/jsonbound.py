"""JSON from someone else, measured before it is parsed.

`json.loads` builds every value of a text before anything can look at them: 64 MB of
`[{},{},...]` are 21 million dicts, gigabytes of a process's memory, and 30,000 `[` are a
RecursionError. So a text is first measured over its bytes, at C speed and in memory of the
order of the text's: its strings blanked (a `,` or `[` inside a string is text), then its values
counted by the separators that introduce them and its nesting by a running sum of its brackets.
A text over a budget is refused unbuilt.
"""

from __future__ import annotations

import re

import numpy as np

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


class TooLarge(ValueError):
    """A JSON text with more values, or deeper, than its budget allows."""


def check_json(text: bytes | memoryview, max_values: int, max_depth: int) -> None:
    """TooLarge unless `text` holds at most `max_values` values (keys count as values) nested
    at most `max_depth` arrays and objects deep. A malformed text may pass: this bounds what
    `json.loads` can build, and it refuses what is malformed."""
    bare = _STRING.sub(b'""', text)
    # Every value but the first follows a `[` (an array's first item), a `,` (a later item or
    # key) or a `:` (an object's value); an object's first key follows its `{`.
    opens = bare.count(b"[") + bare.count(b"{")
    values = 1 + opens + bare.count(b",") + bare.count(b":")
    if values > max_values:
        raise TooLarge(f"more than {max_values:,} values")
    if opens <= max_depth:  # no deeper than it has brackets: most messages, measured no further
        return
    brackets = np.frombuffer(bare.translate(None, _NOT_BRACKET), dtype=np.uint8)
    if brackets.size:
        steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
        if int(np.cumsum(steps, dtype=np.int64).max()) > max_depth:
            raise TooLarge(f"nested more than {max_depth} deep")
