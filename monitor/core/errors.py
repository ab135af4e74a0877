"""The project's one exception tree.

Edges raise; the pipeline decides. A `TransientError` means "the same call may succeed later"
(timeouts, 5xx, 429, a database that is restarting); a `PermanentError` means "retrying the same
call cannot help" (404/410, a feed that is not a feed, a Telegram 400, an SMTP 5xx). `ConfigError`
carries every problem found in the config with its location, so that one run reports them all.
"""

from __future__ import annotations

from dataclasses import dataclass


class MonitorError(Exception):
    """Base of every error this project raises on purpose."""


class TransientError(MonitorError):
    """Worth retrying. `retry_after` (seconds) is the peer's own hint, when it gave one.

    `sent` lists the parts of a multi-part message that did arrive before the failure (their
    external ids), so that the retry sends only the rest. `network`: the peer was never
    reached or stopped answering (connection refused or reset, DNS, timeouts), as opposed to
    an answer that was an error; if most peers fail that way at once, our own network is down.
    `status`: the HTTP status that was the error, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        sent: tuple[str, ...] = (),
        network: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.sent = sent
        self.network = network
        self.status = status


class PermanentError(MonitorError):
    """Not worth retrying as is: the input or the peer's answer is final.

    `sent`: as for TransientError, the parts that arrived before the failure. `status`: the
    HTTP status that was the answer, when there was one (410 Gone disables a feed).
    """

    def __init__(
        self, message: str = "", *, sent: tuple[str, ...] = (), status: int | None = None
    ) -> None:
        super().__init__(message)
        self.sent = sent
        self.status = status


class Refused(PermanentError):
    """The destination refuses every message, not just this one: the bot was blocked or
    kicked (Telegram 403), the token is revoked (401). The pipeline counts these per
    destination and tells the operator once."""


class Ambiguous(TransientError):
    """The request went out but no answer came back (a read timeout): the peer may have acted
    on it. Retrying may duplicate; the pipeline allows that once per alert (see deliver)."""


class DatabaseUnavailable(TransientError):
    """The database could not be reached (the CLI exits 2 on it)."""


class NotAFeed(PermanentError):
    """The body parsed, but it is not RSS, Atom, RDF or JSON Feed (an HTML page, say)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One config problem, printed as `FILE:LINE:COL: message` (line and column from 1).

    A problem with no position in a file (a missing file, an environment variable) has line 0
    and prints as `FILE: message`.
    """

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ConfigError(MonitorError):
    """The config is invalid; `problems` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))
