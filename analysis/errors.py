"""Named errors with the file, row and column of every problem found."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem in an input file.

    Attributes
    ----------
    file : str
        The file the problem is in.
    row : int or None
        Line number in the file (the header is line 1), or None for the whole file.
    column : str or None
        Column name, or None when the problem is not about one column.
    message : str
        What is wrong and how to fix it.
    """

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        """Return the problem as a JSON-ready dict."""
        return {"file": self.file, "row": self.row, "column": self.column,
                "message": self.message}


class TrialmetaError(Exception):
    """Base class of the errors the command line reports without a traceback."""


class DataError(TrialmetaError):
    """The input records are invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(self.format())

    def format(self) -> str:
        """Return every problem, one per line, under a count."""
        head = f"{len(self.problems)} problem(s) in the input:"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


class SpecError(TrialmetaError):
    """A model, selection or claims specification cannot be used as given."""


class ConvergenceError(TrialmetaError):
    """A fit failed its convergence diagnostics."""
