"""User-facing errors: one exception type the CLI turns into a clear message and exit code 2."""
from __future__ import annotations

import difflib
from typing import Iterable


class VibenchError(Exception):
    """An error caused by user input (a file, a value, a name). The message says what was expected."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A " (did you mean 'x'?)" suffix for an unknown name, or "" when nothing is close."""
    by_lower: dict[str, str] = {}
    for choice in sorted(set(choices)):
        by_lower.setdefault(choice.lower(), choice)
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> VibenchError:
    """A VibenchError for an unknown `kind` name, listing the valid names and a did-you-mean."""
    choices = sorted(set(choices))
    return VibenchError(
        f"unknown {kind} {name!r}{did_you_mean(name, choices)}; known: {', '.join(choices)}"
    )
