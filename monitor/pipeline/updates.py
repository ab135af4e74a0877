"""Updating sent alerts in place: a story that gained sources edits its message.

When a copy of a story already alerted arrives (another outlet, an edited headline), the store
marks the sent alert `update_due_at`, no sooner than `defaults.update_interval` after its last
edit. `deliver_updates` re-renders each such alert with every source the story has now and asks
its notifier to edit the message (Telegram's editMessageText; notifiers that cannot edit, such
as email, decline, and nothing is re-sent). Edits go through the same pacing as messages.

A transient failure moves the edit to its retry time; a permanent one (the message was deleted,
the chat is gone) gives it up: an edit is a courtesy, the alert itself arrived. Muted stories
and watchlists are not edited.
"""

from __future__ import annotations

import asyncio
import logging

from monitor.core.errors import PermanentError, TransientError
from monitor.core.timing import retry_delay
from monitor.edges.outbox import DueAlert
from monitor.pipeline.deliver import view_of
from monitor.pipeline.runtime import Muted, Runtime

log = logging.getLogger("monitor.updates")


async def deliver_updates(rt: Runtime, *, batch: int = 100) -> int:
    """Edit every sent alert whose update is due; returns how many were edited."""
    now = rt.clock()
    due = await asyncio.to_thread(rt.outbox.due_updates, now, batch, list(rt.notifiers))
    if not due:
        return 0
    muted = await asyncio.to_thread(rt.mutes.active, now) if rt.mutes else None
    by_destination: dict[str, list[DueAlert]] = {}
    for alert in due:
        by_destination.setdefault(alert.destination, []).append(alert)
    # As in deliver_due: every destination's edits finish before a failure is raised.
    results = await asyncio.gather(
        *(_update_all(rt, name, alerts, muted) for name, alerts in by_destination.items()),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return sum(r for r in results if isinstance(r, int))


async def _update_all(rt: Runtime, name: str, due: list[DueAlert], muted: Muted | None) -> int:
    notifier = rt.notifiers[name]
    outbox = rt.outbox
    edited = 0
    for alert in due:
        view = view_of(rt, alert, muted)
        assert alert.external_id is not None  # due_updates selects sent messages only
        if view is None or (muted is not None and alert.story_id in muted.stories):
            await asyncio.to_thread(outbox.defer_update, alert.id, None, "muted: not edited")
            continue
        try:
            changed = await notifier.update(alert.external_id, view)
        except TransientError as exc:
            at = rt.clock() + retry_delay(1, exc.retry_after)
            log.warning("alert %d to %s: edit will be retried at %s: %s",
                        alert.id, name, at.isoformat(timespec="seconds"), exc)  # fmt: skip
            await asyncio.to_thread(outbox.defer_update, alert.id, at, str(exc))
            return edited  # the destination is failing: the rest wait too
        except PermanentError as exc:
            log.warning("alert %d to %s: edit given up: %s", alert.id, name, exc)
            await asyncio.to_thread(outbox.defer_update, alert.id, None, f"edit: {exc}")
            continue
        except Exception as exc:
            log.exception("alert %d to %s: unexpected error while editing", alert.id, name)
            at = rt.clock() + retry_delay(1)
            await asyncio.to_thread(outbox.defer_update, alert.id, at, f"edit: {exc!r}")
            continue
        await asyncio.to_thread(outbox.mark_updated, alert.id, rt.clock(), alert.update_due_at)
        edited += bool(changed)
    return edited
