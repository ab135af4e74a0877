"""Delivering the outbox: send what is due, mark it sent only after the send succeeded.

Per destination, in order of urgency:

* **Digest destinations** get every due alert as one `Digest` message, grouped by watchlist
  and story, at their `digest_at` times (the alerts were queued to be due then).
* **Immediate destinations** get one message per story, until flood control says otherwise:
  at most `burst_limit` messages per `burst_window`; the alerts beyond that collapse into one
  summary message that lists them (and, once even that budget is spent, wait for the window
  to free up and then go out as one summary).
* **Muted** watchlists and stories (the bot's /mute and buttons) are dropped at send time,
  recorded as skipped.

Failures are the notifiers' to classify and ours to decide:

* transient (Telegram or SMTP down, 429, 5xx): the alert stays pending with a retry time and
  its destination stops for this round, so alerts keep their order; the parts of a multi-part
  message that did arrive are remembered and not sent again;
* ambiguous (the request went out, no answer came: a read timeout): the message may have
  arrived. The alert is retried once; if that try is ambiguous too it is marked sent,
  "unconfirmed", rather than risk a second copy. So an alert reaches a chat at most twice, and
  an alert that never arrived is one whose two tries both timed out after sending;
* refused (Telegram 403: the bot was blocked or removed): the alert stays pending, retried with
  backoff in case the bot is let back in; after REFUSALS_BEFORE_FAILING refusals in a row the
  destination is marked failing and the operator is told, once per outage;
* permanent (a 400 for this very message, an SMTP 5xx): the alert is failed with the reason;
* anything else is a bug: logged with its traceback and retried, never dropped.

After MAX_ATTEMPTS tries (about a day) an alert is failed for good, so that one undeliverable
alert cannot hold its destination's queue forever. Alerts for a destination the config no
longer names stay pending, untouched, in case it comes back. Edits of sent messages (a story
gained sources) are `updates.deliver_updates`'s job, run after each round.

One deliverer at a time per process: the daemon holds a lock around `deliver_due`, because two
rounds reading the same pending alert would both send it. Across processes, one deliverer per
destination: the daemon passes `destinations`, those whose lease it holds (monitor.edges.leases).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from monitor.core.errors import Ambiguous, PermanentError, Refused, TransientError
from monitor.core.render import AlertView, Digest
from monitor.core.timing import MAX_ATTEMPTS, retry_delay
from monitor.edges.destinations import DestinationState
from monitor.edges.notify import Notifier
from monitor.edges.outbox import DueAlert
from monitor.pipeline.runtime import Muted, Runtime

log = logging.getLogger("monitor.deliver")

#: Refusals in a row (403) after which a destination counts as failing and the operator is told.
REFUSALS_BEFORE_FAILING = 3
#: Alerts one digest or summary message lists at most; more make a second one.
DIGEST_BATCH = 500


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    held: int = 0  # waiting for flood control's window

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.sent + other.sent,
            self.retried + other.retried,
            self.failed + other.failed,
            self.skipped + other.skipped,
            self.held + other.held,
        )

    @property
    def stopped(self) -> bool:
        """The destination should get nothing more this round."""
        return bool(self.retried or self.held)


def view_of(rt: Runtime, alert: DueAlert, muted: Muted | None = None) -> AlertView | None:
    """The alert as rendered now: watchlist names from the config in force, muted watchlists
    left out. None when nothing is left to show (every watchlist muted, or its matches gone)."""
    shown = tuple(
        replace(m, name=rt.watchlists[m.watchlist_id].name) if m.watchlist_id in rt.watchlists
        else m
        for m in alert.matches
        if muted is None or m.watchlist_id not in muted.watchlists
    )  # fmt: skip
    if not shown:
        return None
    return AlertView(
        article=alert.article,
        source=alert.source,
        matches=shown,
        also=alert.also,
        alert_id=alert.id,
        story_id=alert.story_id,
    )


@dataclass(slots=True)
class _Round:
    """One delivery round: the runtime, what is muted, and the destinations' state as read at
    the start (updated as sends succeed, so a streak is cleared once, not per message)."""

    rt: Runtime
    muted: Muted | None
    states: dict[str, DestinationState]


def burst_rule(rt: Runtime, destination: str) -> tuple[int, timedelta]:
    """(limit, window) of flood control for a destination; limit 0 means off."""
    spec = rt.config.destinations.get(destination)
    defaults = rt.config.defaults
    limit = spec.burst_limit if spec and spec.burst_limit is not None else defaults.burst_limit
    window = spec.burst_window if spec and spec.burst_window else defaults.burst_window
    return limit, window


def _is_digest(rt: Runtime, destination: str) -> bool:
    spec = rt.config.destinations.get(destination)
    return spec is not None and spec.mode == "digest"


async def _prepare(
    rt: Runtime, due: Sequence[DueAlert], muted: Muted | None
) -> tuple[list[tuple[DueAlert, AlertView]], DeliveryReport]:
    """Pair each alert with its view; settle those with nothing to show (muted, matches gone)."""
    ready = []
    report = DeliveryReport()
    for alert in due:
        view = view_of(rt, alert, muted)
        if not alert.matches:
            await asyncio.to_thread(rt.outbox.mark_failed, alert.id, "its matches are gone")
            report += DeliveryReport(failed=1)
        elif view is None or (muted is not None and alert.story_id in muted.stories):
            what = "story" if view is not None else "watchlists"
            await asyncio.to_thread(rt.outbox.mark_skipped, alert.id, f"{what} muted", "muted")
            report += DeliveryReport(skipped=1)
        else:
            ready.append((alert, view))
    return ready, report


async def _deliver_to(rnd: _Round, destination: str, due: Sequence[DueAlert]) -> DeliveryReport:
    rt = rnd.rt
    notifier = rt.notifiers.get(destination)
    assert notifier is not None  # due alerts are fetched for configured destinations only
    ready, report = await _prepare(rt, due, rnd.muted)
    if not ready:
        return report
    if _is_digest(rt, destination):
        return report + await _send_together(rnd, notifier, ready, "digest")
    limit, window = burst_rule(rt, destination)
    if limit == 0:
        return report + await _send_each(rnd, notifier, ready)
    used = await asyncio.to_thread(rt.outbox.messages_since, destination, rt.clock() - window)
    budget = limit - used
    if len(ready) <= budget:
        return report + await _send_each(rnd, notifier, ready)
    if budget <= 0:
        # Even the summary must wait: the window frees up as its oldest message ages out.
        return report + DeliveryReport(held=len(ready))
    alone, together = ready[: budget - 1], ready[budget - 1 :]
    log.warning("%s: flood control: %d alerts within %s; %d go out as one summary",
                destination, used + len(ready), window, len(together))  # fmt: skip
    sent = await _send_each(rnd, notifier, alone)
    if sent.stopped:
        return report + sent
    return report + sent + await _send_together(rnd, notifier, together, "summary")


async def _send_each(
    rnd: _Round, notifier: Notifier, ready: Sequence[tuple[DueAlert, AlertView]]
) -> DeliveryReport:
    """One message per alert, in order; stops at the first transient failure."""
    report = DeliveryReport()
    for alert, view in ready:
        outcome = await _send_one(rnd, notifier, alert, view)
        report += outcome
        if outcome.stopped:
            break
    return report


async def _send_one(
    rnd: _Round, notifier: Notifier, alert: DueAlert, view: AlertView
) -> DeliveryReport:
    rt = rnd.rt
    outbox, name = rt.outbox, notifier.name
    try:
        receipt = await notifier.send(view, done=alert.parts)
    except Ambiguous as exc:
        if alert.uncertain >= 1:
            # Retried once already after a send that may have arrived: a third copy is worse
            # than an unconfirmed one.
            note = f"unconfirmed: {exc}"
            log.warning("alert %d to %s: %s; counted as sent", alert.id, name, note)
            await asyncio.to_thread(outbox.mark_sent, alert.id, rt.clock(), None, note=note)
            return DeliveryReport(sent=1)
        return await _retry(rt, alert, exc, uncertain=True)
    except Refused as exc:
        await _refused(rt, name, str(exc))
        return await _retry(rt, alert, exc, counted=False)
    except PermanentError as exc:
        log.error("alert %d to %s: failed for good: %s", alert.id, name, exc)
        await asyncio.to_thread(outbox.mark_failed, alert.id, str(exc))
        return DeliveryReport(failed=1)
    except Exception as exc:  # transient, or a bug in a notifier: retry, never lose it
        if not isinstance(exc, TransientError):
            log.exception("alert %d to %s: unexpected error", alert.id, name)
        return await _retry(rt, alert, exc)
    await asyncio.to_thread(outbox.mark_sent, alert.id, rt.clock(), receipt.external_id,
                            refused=receipt.refused)  # fmt: skip
    if receipt.refused:
        log.warning("alert %d to %s: not delivered to %s", alert.id, name,
                    ", ".join(f"{a} ({r})" for a, r in receipt.refused.items()))  # fmt: skip
    await _settled(rnd, notifier)
    return DeliveryReport(sent=1)


async def _send_together(
    rnd: _Round,
    notifier: Notifier,
    ready: Sequence[tuple[DueAlert, AlertView]],
    kind: str,
) -> DeliveryReport:
    """One digest or summary message for all of `ready`; all settle the same way."""
    rt = rnd.rt
    ids = [alert.id for alert, _ in ready]
    message = Digest(kind="digest" if kind == "digest" else "summary",
                     items=tuple(view for _, view in ready), at=rt.clock())  # fmt: skip
    try:
        receipt = await notifier.send(message)
    except Ambiguous as exc:
        if any(alert.uncertain >= 1 for alert, _ in ready):
            # The same rule as for one alert: one retry after a send that may have arrived.
            note = f"unconfirmed: {exc}"
            log.warning("%s to %s (%d alerts): %s; counted as sent", kind, notifier.name,
                        len(ids), note)  # fmt: skip
            await asyncio.to_thread(rt.outbox.mark_many_sent, ids, rt.clock(), None, kind)
            return DeliveryReport(sent=len(ids))
        report = DeliveryReport()
        for alert, _ in ready:
            report += await _retry(rt, alert, exc, uncertain=True, keep_parts=False)
        return report
    except Refused as exc:
        await _refused(rt, notifier.name, str(exc))
        report = DeliveryReport()
        for alert, _ in ready:
            report += await _retry(rt, alert, exc, keep_parts=False, counted=False)
        return report
    except PermanentError as exc:
        log.error("%s to %s (%d alerts): failed for good: %s", kind, notifier.name, len(ids), exc)
        for alert_id in ids:
            await asyncio.to_thread(rt.outbox.mark_failed, alert_id, f"{kind}: {exc}")
        return DeliveryReport(failed=len(ids))
    except Exception as exc:
        if not isinstance(exc, TransientError):
            log.exception("%s to %s: unexpected error", kind, notifier.name)
        return await _retry_all(rt, ready, exc)
    # Console receipts carry no id; a summary still needs one to count as one message.
    external_id = receipt.external_id or f"{kind}:{ids[0]}"
    await asyncio.to_thread(rt.outbox.mark_many_sent, ids, rt.clock(), external_id, kind)
    await _settled(rnd, notifier)
    return DeliveryReport(sent=len(ids))


async def _retry_all(
    rt: Runtime, ready: Sequence[tuple[DueAlert, AlertView]], exc: Exception
) -> DeliveryReport:
    report = DeliveryReport()
    for alert, _ in ready:
        report += await _retry(rt, alert, exc, keep_parts=False)
    return report


async def _retry(
    rt: Runtime, alert: DueAlert, exc: Exception, *, uncertain: bool = False,
    keep_parts: bool = True, counted: bool = True,
) -> DeliveryReport:  # fmt: skip
    """Leave the alert pending until its retry time. `counted=False` (the destination refuses
    everything, a 403) keeps it from ever being failed: the outage is the destination's, and
    its alerts wait for it however long it lasts."""
    outbox = rt.outbox
    known = isinstance(exc, TransientError | PermanentError)
    error = str(exc) if known else f"{type(exc).__name__}: {exc}"
    if counted and alert.attempts + 1 >= MAX_ATTEMPTS:
        # About a day of retries: this alert, not the destination, is the problem.
        log.error("alert %d to %s: giving up after %d attempts: %s",
                  alert.id, alert.destination, MAX_ATTEMPTS, error)  # fmt: skip
        message = f"gave up after {MAX_ATTEMPTS} attempts: {error}"
        await asyncio.to_thread(outbox.mark_failed, alert.id, message)
        return DeliveryReport(failed=1)
    hint = exc.retry_after if isinstance(exc, TransientError) else None
    at = rt.clock() + retry_delay(alert.attempts + 1, hint)
    log.warning("alert %d to %s: will retry at %s: %s", alert.id, alert.destination,
                at.isoformat(timespec="seconds"), error)  # fmt: skip
    sent = getattr(exc, "sent", ()) if keep_parts else ()
    await asyncio.to_thread(outbox.mark_retry, alert.id, error, at, parts=sent,
                            uncertain=uncertain)  # fmt: skip
    return DeliveryReport(retried=1)


async def _refused(rt: Runtime, destination: str, error: str) -> None:
    """Count a refusal; past the threshold, mark the destination failing and tell the operator
    once (until a send succeeds again)."""
    if rt.destinations is None:
        return
    state = await asyncio.to_thread(rt.destinations.refused, destination, error, rt.clock())
    if state.failures < REFUSALS_BEFORE_FAILING or state.operator_told_at is not None:
        return
    text = (f"Destination {destination} is failing: {state.failures} refusals in a row since "
            f"{state.failing_since:%Y-%m-%d %H:%M} UTC ({error}). Its alerts are kept and "
            "retried; check that the bot is still a member of the chat.")  # fmt: skip
    log.error("%s", text)
    if rt.notice is not None:
        await rt.notice(text)
    await asyncio.to_thread(rt.destinations.told, destination, rt.clock())


async def _settled(rnd: _Round, notifier: Notifier) -> None:
    """After a success: clear a failing streak, and remember a chat that moved."""
    rt = rnd.rt
    if rt.destinations is None:
        return
    name = notifier.name
    known = rnd.states.get(name, DestinationState(name=name))
    if known.failures:
        await asyncio.to_thread(rt.destinations.succeeded, name, rt.clock())
        known = rnd.states[name] = replace(known, failures=0)
    # A Telegram group that became a supergroup: the notifier followed it (ChatMigrated);
    # keep the new id so that a restart or a reload sends there too.
    chat = getattr(notifier, "chat_id", None)
    spec = rt.config.destinations.get(name)
    if chat is None or spec is None or spec.chat_id is None or str(chat) == str(spec.chat_id):
        return
    if known.chat_id != str(chat):
        was = str(spec.chat_id)
        await asyncio.to_thread(rt.destinations.moved, name, str(chat), rt.clock(), was)
        rnd.states[name] = replace(known, chat_id=str(chat), moved_from=was)


async def deliver_due(
    rt: Runtime, *, batch: int = 200, destinations: Collection[str] | None = None
) -> DeliveryReport:
    """Send every alert that is due, destinations in parallel, each in order; only to
    `destinations` when given (the others' alerts stay pending for another deliverer)."""
    total = DeliveryReport()
    # Failed or held this round: they wait for their time. Not ours: never looked at.
    paused: set[str] = set() if destinations is None else set(rt.notifiers) - set(destinations)
    muted = await asyncio.to_thread(rt.mutes.active, rt.clock()) if rt.mutes else None
    states = await asyncio.to_thread(rt.destinations.all) if rt.destinations else {}
    rnd = _Round(rt, muted, states)
    while True:
        names = [n for n in rt.notifiers if n not in paused]
        if not names:
            return total
        digests = [n for n in names if _is_digest(rt, n)]
        others = [n for n in names if n not in digests]
        now = rt.clock()
        due = await asyncio.to_thread(rt.outbox.due_alerts, now, batch, others) if others else []
        more = len(due) >= batch
        by_destination: dict[str, list[DueAlert]] = {}
        for alert in due:
            by_destination.setdefault(alert.destination, []).append(alert)
        for name in digests:
            # A digest holds everything due for its destination: it reads a batch of its own
            # rather than a share of one that the other destinations fill.
            own = await asyncio.to_thread(rt.outbox.due_alerts, now, DIGEST_BATCH, [name])
            if own:
                by_destination[name] = own
                more |= len(own) >= DIGEST_BATCH
        if not by_destination:
            return total
        order = list(by_destination)
        # Every destination's round runs to its end even when another one fails (the database
        # went away, say): a send left running after we return would be read again, still
        # pending, by the next round, and sent twice.
        results = await asyncio.gather(
            *(_deliver_to(rnd, n, by_destination[n]) for n in order), return_exceptions=True
        )
        failure: BaseException | None = None
        for name, result in zip(order, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                paused.add(name)
                continue
            total += result
            if result.stopped or not result.sent + result.failed + result.skipped:
                paused.add(name)
        if failure is not None:
            raise failure
        if not more:
            return total
