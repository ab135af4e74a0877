"""Console notifier: each alert or digest as plain text on a stream (stdout for `monitor run`).

Contract: implements `monitor.edges.notify.Notifier`. `send` writes `render_text(view)` for an
alert, or `render_digest_text(digest)` for a digest / flood-control summary, then a blank line,
flushes, and returns an empty `Receipt` (a line on a terminal has no id). A console message is
one part with no id, so `done` is always empty and is ignored. `update` writes nothing and
returns False: text already written cannot be rewritten, and a line per new source of every
story would bury the alerts; besides, with no external id there is nothing to update. A stream
that cannot be written (closed pipe, full disk) is an OSError/ValueError; the first is reported
as transient, a closed stream as permanent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TextIO

from monitor.core.errors import PermanentError, TransientError
from monitor.core.render import AlertView, Outgoing, render_text
from monitor.core.render_digest import render_digest_text
from monitor.edges.notify import Receipt


class ConsoleNotifier:
    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name
        self._stream = stream

    async def send(self, message: Outgoing, done: Sequence[str] = ()) -> Receipt:
        if isinstance(message, AlertView):
            text = render_text(message)
        else:
            text = render_digest_text(message)
        try:
            self._stream.write(text + "\n\n")
            self._stream.flush()
        except ValueError as exc:  # "I/O operation on closed file"
            raise PermanentError(f"console {self.name}: {exc}") from exc
        except OSError as exc:
            raise TransientError(f"console {self.name}: {exc}") from exc
        return Receipt()

    async def update(self, external_id: str, message: Outgoing) -> bool:
        # See the module docstring: the console cannot edit what it wrote.
        return False

    async def aclose(self) -> None:
        # The stream belongs to the caller (usually sys.stdout): flushing is all we owe it.
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()
