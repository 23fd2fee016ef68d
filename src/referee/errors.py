"""One exception hierarchy for everything referee raises on purpose.

The CLI turns any :class:`RefereeError` into a one-line message and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class RefereeError(Exception):
    """Base class of every error referee raises deliberately."""

    exit_code = 2


class InputError(RefereeError):
    """Bad user input: names the file, line and field where it can.

    Args:
        message: what is wrong, in words a user can act on.
        path: the file (or folder) at fault.
        line: 1-based line number within ``path``.
        field: the record field at fault.
    """

    def __init__(self, message: str, *, path: object = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "")
        if field is not None:
            where += f" [field '{field}']" if where else f"field '{field}'"
        super().__init__(f"{where}: {message}" if where else message)


class MissingCandidatesError(InputError):
    """Some (prompt, system) pairs have no output; ``missing`` lists them."""

    def __init__(self, message: str, missing: list[tuple[str, str]], *, path: object = None) -> None:
        self.missing = missing
        super().__init__(message, path=path)


class ModelNotInstalledError(RefereeError):
    """A packaged judge model is not installed; the message says how to install it."""


class ModelIntegrityError(RefereeError):
    """A model file's size or sha256 does not match the pinned value."""


class BackendError(RefereeError):
    """A backend failed to produce an answer (unreachable server, runtime failure)."""


class WorkersLostError(BackendError):
    """The workers that answer a run's questions (a Ray cluster's actors) are gone for good. The run
    stops at once: the questions in flight are not recorded as errors, since no judge answered them."""


class CostLimitError(RefereeError):
    """Asking the next question would pass ``--max-cost``. Not a backend failure: nothing is stored
    for that question; a run rates what it has, and fails with this error only if that is nothing."""


class RatingError(RefereeError):
    """The verdicts cannot be rated as asked (disconnected graph, no comparisons, ...)."""


class RatingDivergenceError(RatingError):
    """The maximum-likelihood ratings do not exist: some systems never lost (or never won) against the rest.

    A prior (``reg > 0``) makes them finite; the caller decides whether to fit with one.

    Attributes:
        top: indices of the systems nobody outside their group ever beat (their lead diverges).
        bottom: indices of the systems that never beat anyone outside their group.
    """

    def __init__(self, message: str, *, top: list[int], bottom: list[int]) -> None:
        self.top = top
        self.bottom = bottom
        super().__init__(message)


class StoreError(RefereeError):
    """The verdict store is unusable (wrong schema, another run's judge, ...)."""
