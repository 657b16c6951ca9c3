"""What text from a user may contain before it reaches a terminal, a report or a CSV file.

Two rules. A *name* (a study, arm, claim id, ...) is printable text: no control characters
(category Cc: NUL, ESC of the terminal's escape sequences, newlines) and no invisible format
characters (category Cf: the right-to-left override U+202E, zero-width spaces, ...), which
would let one name look like another or rewrite a terminal line. *Free text* (a quote, a
title, a source) may also hold line breaks and tabs, nothing else of those categories.
"""

from __future__ import annotations

import unicodedata

#: characters free text may hold besides printable ones
FREE_TEXT_ALLOWED = frozenset("\n\t\r")


def text_problem(value: str, *, name: bool) -> str | None:
    """Say what is wrong with ``value`` under the names rule (or the free-text rule), if anything.

    Parameters
    ----------
    value : str
        The text.
    name : bool
        True for a name (no line breaks either), False for free text.
    """
    if value.isprintable():  # C speed; false for every Cc, Cf and Cs (and some spaces)
        return None
    for c in value:
        if name or c not in FREE_TEXT_ALLOWED:
            if unicodedata.category(c) in ("Cc", "Cf", "Cs"):
                return (f"contains a control or invisible character (U+{ord(c):04X}); "
                        + ("names must be printable text" if name else
                           "text must be printable (line breaks and tabs are allowed)"))
    return None
