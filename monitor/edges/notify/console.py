"""Console notifier: writes each alert as plain text to a stream (stdout for `monitor run`).

Contract: `send` writes `render_text(view)` and a blank line, flushes, and returns None. A
stream that cannot be written (closed pipe, full disk) is an OSError/ValueError; the first is
reported as transient, a closed stream as permanent.
"""

from __future__ import annotations

import contextlib
from typing import TextIO

from monitor.core.errors import PermanentError, TransientError
from monitor.core.render import AlertView, render_text


class ConsoleNotifier:
    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name
        self._stream = stream

    async def send(self, view: AlertView) -> str | None:
        try:
            self._stream.write(render_text(view) + "\n\n")
            self._stream.flush()
        except ValueError as exc:  # "I/O operation on closed file"
            raise PermanentError(f"console {self.name}: {exc}") from exc
        except OSError as exc:
            raise TransientError(f"console {self.name}: {exc}") from exc
        return None

    async def aclose(self) -> None:
        # The stream belongs to the caller (usually sys.stdout): flushing is all we owe it.
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()
