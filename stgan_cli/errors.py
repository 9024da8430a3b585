"""Errors a user can act on: each one is printed as a single line, without a traceback."""


class StganError(Exception):
    """A problem with the user's input or environment (exit code 1)."""

    exit_code = 1


class UsageError(StganError):
    """The command line itself is wrong (exit code 2)."""

    exit_code = 2


def suggest(word: str, choices) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else an empty string."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


DEBUG_HINT = "set STGAN_DEBUG=1 to see the traceback"


def unexpected(exc: BaseException) -> str:
    """One line for an error nobody anticipated: what it was, and how to see more."""
    text = str(exc).strip().splitlines()
    return f"unexpected {type(exc).__name__}{': ' + text[0] if text else ''} ({DEBUG_HINT})"
