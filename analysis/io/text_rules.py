"""What text from a user may contain before it reaches a terminal, a report or a CSV file.

Two rules. A *name* (a study, arm, claim id, ...) is printable text: no control characters
(category Cc: NUL, ESC of the terminal's escape sequences, newlines) and no invisible format
characters (category Cf: the right-to-left override U+202E, zero-width spaces, ...), which
would let one name look like another or rewrite a terminal line. *Free text* (a quote, a
title, a source) may also hold line breaks and tabs, nothing else of those categories.
"""

from __future__ import annotations

import re
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
    for c in value:
        if name or c not in FREE_TEXT_ALLOWED:
            if unicodedata.category(c) in ("Cc", "Cf", "Cs"):
                return (f"contains a control or invisible character (U+{ord(c):04X}); "
                        + ("names must be printable text" if name else
                           "text must be printable (line breaks and tabs are allowed)"))
    return None


#: a vectorised form of the free-text rule for whole columns (Cc except tab, LF, CR; Cf)
BAD_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd"
                       "\u070f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
                       "\ufeff\ufff9-\ufffb]")


def has_bad_free_text(value: str) -> bool:
    """Fast screen for the free-text rule (then ``text_problem`` says what is wrong)."""
    return BAD_FREE_TEXT.search(value) is not None
