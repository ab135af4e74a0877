"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 that PTB's own HTTPX client talks to.

Routes `POST|GET /bot<token>/<method>` and reads JSON, x-www-form-urlencoded (what PTB sends) and
multipart bodies. It answers getMe, sendMessage, editMessageText, getUpdates (queued updates;
the long-poll `timeout` waits on a condition, never spins), answerCallbackQuery, deleteWebhook,
setMyCommands and getMyCommands, and validates the way Telegram does:

- an unknown token gets 401 Unauthorized, an unknown method 404 Not Found;
- with parse_mode HTML the text is parsed (tests/fakes/telegram_html.py): a tag the Bot API does
  not list, an unclosed or mismatched tag, a bare `<` or an `&` that is not an entity gets
  400 "Bad Request: can't parse entities: ...";
- a text over 4096 UTF-16 code units after entity parsing (how the Bot API counts) gets
  400 "Bad Request: message is too long";
- with `enforce_limits=True` (or `enforce_limits()`), Telegram's flood control, to the letter:
  a sendMessage or editMessageText that would make more than 1 to one chat within 1.0 s, more
  than 20 to one group or channel chat (negative id, `@name`) within 60 s, or more than 30 in
  all within 1.0 s gets 429 with `parameters.retry_after` (the seconds until the window frees,
  rounded up) and is counted in `flood_answers`. Windows are measured on the server's clock,
  when the request arrives, as Telegram measures them.

Failures are scripted per method with `script(method, *replies)` (`Canned.flood`, `.bad_request`,
`.forbidden`, `.bad_gateway`, `.not_json`, `.migrated`, `.stall`), or per chat with
`migrate_chat(old, new)`. `Canned.stall(s)` handles the call (a message is delivered) and then
holds the answer for `s` seconds, so a client whose read timeout is shorter gives up on a
message that did arrive: an ambiguous timeout. `unaccepting_url()` gives a URL whose connects
time out, for the other kind. Every call is recorded (method, params, token) under a lock;
`messages()` lists delivered messages in order; `root_url` is the MONITOR_TELEGRAM_API_URL value
pointing here. Fixture: `bot_api`.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fakes.loopback import LoopbackFake, LoopbackHandler, running
from tests.fakes.telegram_html import HtmlParseError, parse_html

__all__ = [
    "DEFAULT_TOKEN",
    "ApiCall",
    "Canned",
    "FakeBotApi",
    "SentMessage",
    "bot_api",
    "unaccepting_url",
]

DEFAULT_TOKEN = "123456789:AAFake-token_for-tests_0123456789abcd"
MESSAGE_LIMIT = 4096
#: Bot API FAQ: 1 message per second in a chat, 20 per minute in a group, 30 per second in all.
CHAT_WINDOW, GROUP_WINDOW, ALL_WINDOW = (1, 1.0), (20, 60.0), (30, 1.0)
_PACED_METHODS = frozenset({"sendmessage", "editmessagetext"})

# Parameters that are strings even when they look like JSON ("123", "true").
_STRING_PARAM_NAMES = (
    "text caption parse_mode callback_query_id url query description short_description name "
    "title data inline_message_id business_connection_id message_effect_id emoji "
    "secret_token language_code"
)
_STRING_PARAMS = frozenset(_STRING_PARAM_NAMES.split())


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class ApiCall:
    method: str
    token: str
    params: dict[str, Any]


@dataclass(frozen=True)
class SentMessage:
    message_id: int
    chat_id: int | str
    text: str  # as sent (HTML source when parse_mode is HTML)
    parse_mode: str | None
    visible: str  # what a user sees: entities decoded, tags gone
    params: dict[str, Any] = field(default_factory=dict)
    edits: int = 0


@dataclass(frozen=True)
class Canned:
    """A scripted answer. `body=None` means: answer normally, after waiting `delay` seconds;
    with `deliver_first` the call is carried out first and only the answer waits."""

    status: int = 200
    body: bytes | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    deliver_first: bool = False

    @staticmethod
    def error(status: int, description: str, **parameters: Any) -> Canned:
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return Canned(status, json.dumps(payload).encode())

    @classmethod
    def flood(cls, retry_after: int) -> Canned:
        return cls.error(
            429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
        )

    @classmethod
    def bad_request(cls, description: str = "Bad Request: chat not found") -> Canned:
        return cls.error(400, description)

    @classmethod
    def forbidden(cls, description: str = "Forbidden: bot was blocked by the user") -> Canned:
        return cls.error(403, description)

    @classmethod
    def migrated(cls, new_chat_id: int) -> Canned:
        return cls.error(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            migrate_to_chat_id=new_chat_id,
        )

    @staticmethod
    def bad_gateway() -> Canned:
        page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        return Canned(502, page, "text/html")

    @staticmethod
    def not_json() -> Canned:
        return Canned(200, b"<html><body>Welcome to the captive portal</body></html>", "text/html")

    @staticmethod
    def stall(seconds: float) -> Canned:
        """Carry the call out (the message is delivered), then hold the answer back."""
        return Canned(delay=seconds, deliver_first=True)


class FakeBotApi(LoopbackFake):
    """The fake server. Use the `bot_api` fixture, or `with FakeBotApi() as api:`."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, enforce_limits: bool = False) -> None:
        self.token = token
        self.tokens = {token}
        self.bot_id = int(token.split(":")[0])
        self._cond = threading.Condition()
        self._calls: list[ApiCall] = []
        self._scripts: dict[str, deque[Canned]] = {}
        self._messages: dict[int, SentMessage] = {}
        self._migrated: dict[int | str, int] = {}
        self._updates: deque[dict[str, Any]] = deque()
        self._next_update_id = 1
        self._next_message_id = 1
        self.commands: list[Any] = []
        self.limits_enforced = enforce_limits
        #: The clock the limits are measured on; a test may stop it to make them exact.
        self.clock: Callable[[], float] = time.monotonic
        #: How many calls got a 429 from the enforced limits (scripted floods not counted).
        self.flood_answers = 0
        self._paced_all: deque[float] = deque()
        self._paced_chat: dict[str, deque[float]] = {}
        super().__init__(_Handler, "fake-bot-api")

    def enforce_limits(self, on: bool = True) -> None:
        """Answer 429 to calls beyond Telegram's rate limits (see the module docstring)."""
        with self._cond:
            self.limits_enforced = on

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()  # long-polling getUpdates calls

    # --- scripting ----------------------------------------------------------------------------

    def script(self, method: str, *replies: Canned, times: int = 1) -> None:
        """Answer the next calls of `method` with `replies` (`times` over), one each, in order."""
        with self._cond:
            self._scripts.setdefault(method.lower(), deque()).extend(replies * times)

    def migrate_chat(self, old: int | str, new: int) -> None:
        """From now on, sending to `old` answers 400 with parameters.migrate_to_chat_id=new."""
        with self._cond:
            self._migrated[old] = new

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; returns its update_id (assigned when missing)."""
        with self._cond:
            if "update_id" not in update:
                update = {"update_id": self._next_update_id, **update}
            self._next_update_id = max(self._next_update_id, update["update_id"]) + 1
            self._updates.append(update)
            self._cond.notify_all()
            return int(update["update_id"])

    def push_text(self, chat_id: int, text: str, *, user_id: int = 42) -> int:
        """Queue a user's text message (a bot command such as "/status", say)."""
        message = {
            "message_id": self._new_message_id(),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": {"id": user_id, "is_bot": False, "first_name": "Tester"},
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.push_update({"message": message})

    # --- inspection ---------------------------------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def messages(self) -> list[SentMessage]:
        """Delivered messages in the order they were sent (their current, edited state)."""
        with self._cond:
            return sorted(self._messages.values(), key=lambda m: m.message_id)

    def wait_for(self, predicate: Callable[[FakeBotApi], bool], timeout: float = 5.0) -> bool:
        """Block until `predicate(self)` holds after some call, or `timeout` passes."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    # --- the API ------------------------------------------------------------------------------

    def _new_message_id(self) -> int:
        with self._cond:
            self._next_message_id += 1
            return self._next_message_id - 1

    def handle(self, path: str, params: dict[str, Any]) -> tuple[int, bytes, str]:
        m = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
        if m is None:
            return _error(404, "Not Found")
        token, method = m.group(1), m.group(2)
        with self._cond:
            self._calls.append(ApiCall(method, token, params))
            queue = self._scripts.get(method.lower())
            canned = queue.popleft() if queue else None
            self._cond.notify_all()
        if canned is not None:
            if canned.deliver_first:
                answer = self._answer(token, method, params)
                self.stopping.wait(canned.delay)  # the client has given up long before
                return answer
            if canned.delay and self.stopping.wait(canned.delay):
                return _error(503, "Service Unavailable: fake server is stopping")
            if canned.body is not None:
                return canned.status, canned.body, canned.content_type
        return self._answer(token, method, params)

    def _answer(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, bytes, str]:
        if token not in self.tokens:
            return _error(401, "Unauthorized")
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return _error(404, "Not Found")
        try:
            if method.lower() in _PACED_METHODS:
                self._flood_check(params.get("chat_id"))
            result = handler(params)
        except _ApiError as exc:
            return _error(exc.status, exc.description, **exc.parameters)
        return 200, json.dumps({"ok": True, "result": result}).encode(), "application/json"

    def _flood_check(self, chat_id: Any) -> None:
        """Raise 429 when one more message now would break a window; else count it in."""
        now = self.clock()
        key = str(chat_id)
        group = key.startswith(("-", "@"))
        with self._cond:
            if not self.limits_enforced:
                return
            chat = self._paced_chat.setdefault(key, deque())
            windows = [(self._paced_all, ALL_WINDOW), (chat, CHAT_WINDOW)]
            if group:
                windows.append((chat, GROUP_WINDOW))
            wait = 0.0
            for times, (count, seconds) in windows:
                # The times in the window (now - seconds, now]; the oldest frees it on leaving.
                inside = [t for t in times if t > now - seconds]
                if len(inside) >= count:
                    wait = max(wait, inside[-count] + seconds - now)
            if wait > 0:
                self.flood_answers += 1
                retry = max(1, math.ceil(wait))
                raise _ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
            for times, _ in windows[:2]:
                times.append(now)
                while times and times[0] <= now - GROUP_WINDOW[1]:
                    times.popleft()

    def _api_getme(self, params: dict[str, Any]) -> Any:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Monitor Test Bot",
            "username": "monitor_test_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _checked_text(self, params: dict[str, Any]) -> tuple[str, str | None, str]:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        parse_mode = params.get("parse_mode")
        visible = text
        if isinstance(parse_mode, str) and parse_mode.lower() == "html":
            try:
                visible = parse_html(text)
            except HtmlParseError as exc:
                raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        elif parse_mode is not None:
            raise _ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r} in fake")
        if not visible.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if _utf16_len(visible) > MESSAGE_LIMIT:
            raise _ApiError(400, "Bad Request: message is too long")
        return text, parse_mode, visible

    def _chat_id(self, params: dict[str, Any]) -> int | str:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int | str):
            raise _ApiError(400, "Bad Request: chat not found")
        with self._cond:
            new = self._migrated.get(chat_id)
        if new is not None:
            raise _ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=new,
            )
        return chat_id

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        return {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": _chat(message.chat_id),
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Monitor Test Bot"},
            "text": message.visible,
        }

    def _api_sendmessage(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_id(params)
        text, parse_mode, visible = self._checked_text(params)
        with self._cond:
            message = SentMessage(
                self._new_message_id(), chat_id, text, parse_mode, visible, dict(params)
            )
            self._messages[message.message_id] = message
            self._cond.notify_all()
        return self._message_json(message)

    def _api_editmessagetext(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_id(params)
        text, parse_mode, visible = self._checked_text(params)
        with self._cond:
            old = self._messages.get(params.get("message_id", -1))
            if old is None or str(old.chat_id) != str(chat_id):
                raise _ApiError(400, "Bad Request: message to edit not found")
            if old.text == text and old.parse_mode == parse_mode:
                raise _ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            new = replace(old, text=text, parse_mode=parse_mode, visible=visible)
            new = replace(new, edits=old.edits + 1)
            self._messages[old.message_id] = new
            self._cond.notify_all()
        return self._message_json(new)

    def _api_getupdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        with self._cond:
            if offset > 0:
                # Telegram: an update is confirmed once getUpdates is called with a higher offset.
                while self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()
            if timeout > 0:
                self._cond.wait_for(lambda: bool(self._updates) or self.stopping.is_set(), timeout)
            return list(self._updates)[:limit]

    def _api_answercallbackquery(self, params: dict[str, Any]) -> Any:
        if not params.get("callback_query_id"):
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired")
        return True

    def _api_deletewebhook(self, params: dict[str, Any]) -> Any:
        return True

    def _api_setmycommands(self, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        with self._cond:
            self.commands = commands
        return True

    def _api_getmycommands(self, params: dict[str, Any]) -> Any:
        with self._cond:
            return list(self.commands)


class _ApiError(Exception):
    def __init__(self, status: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _error(status: int, description: str, **parameters: Any) -> tuple[int, bytes, str]:
    canned = Canned.error(status, description, **parameters)
    assert canned.body is not None
    return canned.status, canned.body, canned.content_type


def _chat(chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, str):
        # "@channelname": a public channel; its numeric id is made up but stable.
        fake_id = -1000000000000 - sum(ord(c) for c in chat_id)
        return {"id": fake_id, "type": "channel", "title": chat_id, "username": chat_id[1:]}
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Tester"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": "Test chat"}


def _coerce(name: str, value: str) -> Any:
    # PTB form-encodes every parameter, objects as JSON strings, as the Bot API allows.
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return {}
    if kind == "application/json":
        data = json.loads(body)
        return data if isinstance(data, dict) else {}
    if kind == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        return {k: _coerce(k, v) for k, v in pairs}
    if kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        params: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(payload, bytes):
                continue
            if part.get_filename() is not None:
                params[name] = payload
            else:
                params[name] = _coerce(name, payload.decode("utf-8"))
        return params
    raise ValueError(f"unsupported Content-Type {content_type!r}")


class _Handler(LoopbackHandler[FakeBotApi]):
    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length))

    def _serve(self, body: bytes) -> None:
        url = urlsplit(self.path)
        try:
            params: dict[str, Any] = dict(parse_qsl(url.query))
            params.update(parse_body(self.headers.get("Content-Type", ""), body))
        except ValueError as exc:
            status, payload, ctype = _error(400, f"Bad Request: {exc}")
        else:
            status, payload, ctype = self.server.fake.handle(url.path, params)
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            # The client gave up (a read timeout) and closed the connection first.
            self.close_connection = True


@contextlib.contextmanager
def unaccepting_url() -> Iterator[str]:
    """A root URL on 127.0.0.1 where connecting times out: nothing was sent, for certain.

    A listener with a backlog of 0 that never accepts: once the connections made here fill its
    accept queue, Linux drops the SYN of any further one (net.ipv4.tcp_abort_on_overflow=0,
    the default), so the client's connect waits out its connect timeout.
    """
    with socket.socket() as listener, contextlib.ExitStack() as fillers:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(8):  # until one cannot connect: the queue is full
            filler = fillers.enter_context(socket.socket())
            filler.settimeout(0.2)
            try:
                filler.connect(address)
            except TimeoutError:
                break
        else:
            pytest.skip("this kernel accepts connections beyond a full backlog")
        yield f"http://{address[0]}:{address[1]}"


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    """A running FakeBotApi; fails the test if the fake itself crashed while serving."""
    yield from running(FakeBotApi(), "the fake Bot API crashed")
