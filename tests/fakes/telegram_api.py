"""A local Telegram Bot API look-alike for tests and benchmarks.

It speaks the real wire format on 127.0.0.1 (`POST /bot<token>/<method>`, form or JSON
parameters, `{"ok": true, "result": ...}` answers, `{"ok": false, "error_code", "description",
"parameters": {"retry_after"}}` errors), so the real aiogram `Bot` with its real aiohttp
session talks to it through `TELEGRAM_API_URL`. It records every call, serves `getUpdates`
from a queue the test fills, and can be told to fail the way Telegram does:

- 429 with `parameters.retry_after` (for every chat, or one chat), 403 for a chat that blocked
  the bot, 400 "chat not found";
- 5xx, either before the message was delivered or after (Telegram's answer was lost);
- a timeout after the request was received: the message is delivered, the answer never comes;
- a connection reset after the request was received: delivered, then the socket is aborted;
- 401 "Unauthorized" for every call once the token is revoked;
- 400 "Bad Request: group chat was upgraded to a supergroup chat" with
  `parameters.migrate_to_chat_id` for a group that became a supergroup;
- 409 "Conflict: terminated by other getUpdates request" for a `getUpdates` while another is
  open (a second poller of the same bot), counted in `polling_conflicts`.

With `enforce_limits()` it also holds the bot to Telegram's broadcast limits (about 30 messages per
second, up to 1000 with `allow_paid_broadcast`) and bills paid broadcasts in Stars, as
`tests/fakes/telegram_limits.py` describes; off by default, so tests that send fast need not comply.

editMessageText answers as Telegram does for the messages it knows (those it delivered, and the
bot's messages carried by pushed callback queries): 400 "message to edit not found" for a message
the chat does not have (never sent there, or deleted: `delete_message`), "message can't be edited"
for one older than 48 hours (`age_message`), one marked so (`make_uneditable`) or a user's, "there
is no text in the message to edit" for a photo, "message is not modified: ..." when the text and
keyboard are exactly the message's own, "message text is empty" / "MESSAGE_TOO_LONG" outside 1-4096
characters; otherwise it changes the stored message (its `edits` count it) and answers the Message
with `edit_date`. `messages` holds each chat's messages as the user sees them now.

`delivered` lists the messages a user would see (sendMessage/copyMessage/sendPhoto calls Telegram
carried out, including those whose answer then failed), so a test can check that none came twice.

Files come as Telegram takes them: multipart/form-data, the parameter naming the part as
`attach://<name>`; the call records the part as an `Upload` (its bytes, name and type). sendPhoto
checks an uploaded photo as Telegram documents it (at most 10 MB; width + height at most 10000,
their ratio at most 20; a caption of at most 1024 characters) and answers 400 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.serving import serve
from tests.fakes.telegram_limits import BroadcastLimits

BOT_ID = 7000000001
BOT_USERNAME = "volspike_test_bot"
TOKEN = "7000000001:TEST-token-for-the-local-look-alike"

# Parameters aiogram sends JSON-encoded inside form fields.
_JSON_FIELDS = {
    "reply_markup",
    "commands",
    "scope",
    "menu_button",
    "allowed_updates",
    "entities",
    "link_preview_options",
    "reply_parameters",
    "prices",
    "results",
}


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    message_id: int | None = None  # the message a delivering call created

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))


@dataclass
class StoredMessage:
    """A message as its chat shows it now."""

    chat_id: int
    message_id: int
    text: str | None  # None: no text to edit (a photo, a copy)
    reply_markup: Any
    date: float  # time.time() when it was sent
    by_bot: bool = True
    editable: bool = True
    edits: int = 0


@dataclass
class Failure:
    """An error answer (or no answer: `stall`, `reset`) for the next `count` matching calls;
    `delivered`: the message reached the chat before the answer failed."""

    method: str | None  # None: any method
    status: int
    description: str
    retry_after: int | None = None
    chat_id: int | None = None
    count: int = 1
    delivered: bool = False
    stall: bool = False  # never answer (the client times out)
    reset: bool = False  # abort the connection instead of answering
    migrate_to_chat_id: int | None = None


@dataclass
class FakeTelegram:
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    blocked_chats: set[int] = field(default_factory=set)
    missing_chats: set[int] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)
    latency: float = 0.0
    delivered: list[Call] = field(default_factory=list)
    migrated_chats: dict[int, int] = field(default_factory=dict)  # group id → supergroup id
    token_revoked: bool = False
    limits: BroadcastLimits | None = None  # None: no broadcast limit enforced
    rate_limited: list[Call] = field(default_factory=list)  # calls refused by `limits` (429)
    # getUpdates calls refused because another was open (Telegram's 409 for a second poller)
    polling_conflicts: int = 0
    messages: dict[tuple[int, int], StoredMessage] = field(default_factory=dict)  # (chat, message id)

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._new_update = asyncio.Event()
        self._new_call = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._webhook: dict[str, Any] | None = None
        self._unstall = asyncio.Event()
        self._answers = asyncio.Event()
        self._answers.set()
        self._polling = 0  # getUpdates calls open right now
        # Methods a plug-in (e.g. tests/fakes/telegram_payments.py) adds; a handler may return a
        # ready web.Response (an error) instead of a result.
        self.methods: dict[str, Callable[[dict[str, Any]], object]] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner, self.port = await serve(app, self.host, self.port, shutdown_timeout=0.5)
        self._unstall = asyncio.Event()
        return self

    async def stop(self) -> None:
        self._new_update.set()
        self._unstall.set()  # stalled requests end with a dropped connection
        self._answers.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- test controls -----------------------------------------------------------------

    def fail(
        self,
        method: str | None,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        chat_id: int | None = None,
        count: int = 1,
    ) -> None:
        self.failures.append(Failure(method, status, description, retry_after, chat_id, count))

    def rate_limit(
        self, seconds: int, *, count: int = 1, method: str | None = "sendMessage", chat_id: int | None = None
    ) -> None:
        self.fail(
            method,
            429,
            f"Too Many Requests: retry after {seconds}",
            retry_after=seconds,
            chat_id=chat_id,
            count=count,
        )

    def server_error(
        self,
        *,
        chat_id: int | None = None,
        status: int = 502,
        description: str = "Bad Gateway",
        delivered: bool = False,
        count: int = 1,
    ) -> None:
        """A 5xx for sendMessage; with `delivered`, Telegram delivered it and then failed to answer."""
        self.failures.append(
            Failure("sendMessage", status, description, chat_id=chat_id, count=count, delivered=delivered)
        )

    def stall_after_receipt(self, *, chat_id: int | None = None, count: int = 1) -> None:
        """Deliver the next sendMessage, then never answer it (the client's timeout fires)."""
        self.failures.append(
            Failure("sendMessage", 0, "", chat_id=chat_id, count=count, delivered=True, stall=True)
        )

    def reset_after_receipt(
        self, *, chat_id: int | None = None, count: int = 1, method: str = "sendMessage"
    ) -> None:
        """Carry out the next `method` call (deliver the message, or make the edit), then abort
        the connection instead of answering."""
        self.failures.append(Failure(method, 0, "", chat_id=chat_id, count=count, delivered=True, reset=True))

    def hold_answers(self) -> None:
        """Deliver each sendMessage at once but hold its answer until `release_answers()`."""
        self._answers.clear()

    def release_answers(self) -> None:
        self._answers.set()

    def enforce_limits(self, **limits: int) -> BroadcastLimits:
        """From now on refuse sends over Telegram's broadcast limits and bill paid broadcasts."""
        self.limits = BroadcastLimits(**limits)
        return self.limits

    def revoke_token(self) -> None:
        """From now on every call is answered 401 Unauthorized (the token was revoked)."""
        self.token_revoked = True

    def migrate(self, group_id: int, supergroup_id: int) -> None:
        """The group became a supergroup: messages to the old id get Telegram's migrate error."""
        self.migrated_chats[group_id] = supergroup_id

    def delete_message(self, chat_id: int, message_id: int) -> None:
        """The user deleted the message: editing it is "message to edit not found"."""
        self.messages.pop((chat_id, message_id), None)

    def make_uneditable(self, chat_id: int, message_id: int) -> None:
        """Telegram no longer lets the bot edit the message ("message can't be edited")."""
        self.messages[(chat_id, message_id)].editable = False

    def age_message(self, chat_id: int, message_id: int, seconds: float) -> None:
        """Make the message `seconds` older than it is."""
        self.messages[(chat_id, message_id)].date -= seconds

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        return self.messages.get((chat_id, message_id))

    def delivered_to(self, chat_id: int) -> list[Call]:
        return [c for c in self.delivered if c.chat_id == chat_id]

    def push_update(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **update})
        self._new_update.set()
        return update_id

    def push_message(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
        language_code: str | None = "en",
        first_name: str = "Trader",
        username: str | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> int:
        chat: dict[str, Any] = {"id": chat_id if chat_id is not None else user_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = "Test group"
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        if username:
            user["username"] = username
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self._remember(message, by_bot=False)
        return self.push_update({"message": message})

    def push_channel_post(self, chat_id: int, text: str, *, title: str = "Test channel") -> int:
        post: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "channel", "title": title},
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            post["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self.push_update({"channel_post": post})

    def push_callback(
        self,
        user_id: int,
        data: str,
        *,
        message_id: int = 1,
        chat_id: int | None = None,
        language_code: str | None = "en",
        message_text: str = "…",
        reply_markup: dict[str, Any] | None = None,
    ) -> int:
        """A button press on a bot message (`reply_markup`: the keyboard that message carries)."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "Trader"}
        if language_code:
            user["language_code"] = language_code
        chat = chat_id if chat_id is not None else user_id
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "Trader"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "VolSpike"},
            "text": message_text,
        }
        if reply_markup is not None:
            message["reply_markup"] = reply_markup
        if (chat, message_id) not in self.messages:
            self._remember(message, by_bot=True)
        return self.push_update(
            {
                "callback_query": {
                    "id": str(next(self._update_ids)),
                    "from": user,
                    "chat_instance": str(chat),
                    "data": data,
                    "message": message,
                }
            }
        )

    def calls_to(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def sent_texts(self, chat_id: int) -> list[str]:
        return [
            c.text
            for c in self.calls
            if c.method in ("sendMessage", "editMessageText") and c.chat_id == chat_id
        ]

    async def wait_for(
        self,
        predicate: Callable[[list[Call]], bool],
        timeout: float = 10.0,
    ) -> list[Call]:
        """Wait until `predicate(calls)` holds; returns the calls. Fails the test on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self.calls):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out waiting; calls so far: {[(c.method, c.params) for c in self.calls[-10:]]}"
                )
            self._new_call.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_call.wait(), timeout=min(remaining, 0.2))
        return self.calls

    async def wait_for_call(
        self, method: str, chat_id: int | None = None, *, count: int = 1, timeout: float = 10.0
    ) -> list[Call]:
        await self.wait_for(lambda _: len(self.calls_to(method, chat_id)) >= count, timeout)
        return self.calls_to(method, chat_id)

    # -- the protocol ------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json(loads=orjson.loads))
            else:
                form = await request.post()
                files: dict[str, Upload] = {}
                for key, value in form.items():
                    if isinstance(value, str):
                        params[key] = value
                    else:
                        files[key] = Upload(value.filename, value.content_type, value.file.read())
                for key, value in list(params.items()):
                    if isinstance(value, str) and value.startswith("attach://"):
                        params[key] = files.get(value.removeprefix("attach://"), value)
        for key in _JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                with contextlib.suppress(orjson.JSONDecodeError):
                    params[key] = orjson.loads(params[key])
        return params

    def _take_failure(self, method: str, params: dict[str, Any]) -> Failure | None:
        chat = params.get("chat_id")
        chat_id = int(chat) if chat is not None and str(chat).lstrip("-").isdigit() else None
        for failure in self.failures:
            if failure.method not in (None, method):
                continue
            if failure.chat_id is not None and failure.chat_id != chat_id:
                continue
            failure.count -= 1
            if failure.count <= 0:
                self.failures.remove(failure)
            return failure
        if method in _CHAT_METHODS and chat_id is not None:
            if chat_id in self.migrated_chats:
                return Failure(
                    method,
                    400,
                    "Bad Request: group chat was upgraded to a supergroup chat",
                    migrate_to_chat_id=self.migrated_chats[chat_id],
                )
            if chat_id in self.blocked_chats:
                return Failure(method, 403, "Forbidden: bot was blocked by the user")
            if chat_id in self.missing_chats:
                return Failure(method, 400, "Bad Request: chat not found")
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.match_info["token"] != TOKEN or self.token_revoked:
            return _error(401, "Unauthorized")
        params = await self._params(request)
        call = Call(method, params, time.monotonic())
        if method != "getUpdates":
            self.calls.append(call)
            self._new_call.set()
        if self.latency:
            await asyncio.sleep(self.latency)
        paid = method in _DELIVERING and str(params.get("allow_paid_broadcast")).lower() == "true"
        if self.limits is not None and method in _DELIVERING:
            retry_after = self.limits.refuse(paid)
            if retry_after is not None:
                self.rate_limited.append(call)
                return _error(
                    429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
                )
        failure = self._take_failure(method, params)
        if failure is not None:
            if failure.delivered and method == "editMessageText":
                if self._edit_problem(params) is None:
                    self._edit(params)
            elif failure.delivered:
                self._deliver(call, paid)
            if failure.stall:
                await self._unstall.wait()
                failure.reset = True
            if failure.reset:
                if request.transport is not None:  # None: the client already hung up
                    request.transport.abort()
                raise asyncio.CancelledError  # nothing more to write: the connection is gone
            parameters: dict[str, Any] = {}
            if failure.retry_after is not None:
                parameters["retry_after"] = failure.retry_after
            if failure.migrate_to_chat_id is not None:
                parameters["migrate_to_chat_id"] = failure.migrate_to_chat_id
            return _error(failure.status, failure.description, parameters)
        if method == "sendPhoto":
            refused = _photo_problem(params)
            if refused is not None:
                return _error(400, refused)
        if method == "editMessageText":
            refused = self._edit_problem(params)
            if refused is not None:
                return _error(400, refused)
        if method in _DELIVERING:
            self._deliver(call, paid)
            await self._answers.wait()
        if method == "getUpdates":
            if self._polling:
                self.polling_conflicts += 1
                return _error(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            self._polling += 1
            try:
                return _ok(await self._get_updates(params))
            finally:
                self._polling -= 1
        if method in self.methods:
            result = self.methods[method](params)
            return result if isinstance(result, web.Response) else _ok(result)
        handler = _RESULTS.get(method)
        if handler is None:
            return _ok(True)
        if method == "editMessageText":
            return _ok(self._edit(params))
        if call.message_id is not None:
            params = {**params, "message_id": call.message_id}
        return _ok(handler(self, params))

    def _deliver(self, call: Call, paid: bool) -> None:
        self.delivered.append(call)
        if self.limits is not None:
            self.limits.delivered(paid)
        call.message_id = next(self._message_ids)
        chat = _chat_id(call.params)
        if chat is not None:
            text = call.params.get("text") if call.method == "sendMessage" else None
            self.messages[(chat, call.message_id)] = StoredMessage(
                chat,
                call.message_id,
                None if text is None else str(text),
                call.params.get("reply_markup"),
                time.time(),
            )

    def _remember(self, message: dict[str, Any], *, by_bot: bool) -> None:
        chat = int(message["chat"]["id"])
        self.messages[(chat, int(message["message_id"]))] = StoredMessage(
            chat,
            int(message["message_id"]),
            message.get("text"),
            message.get("reply_markup"),
            float(message["date"]),
            by_bot=by_bot,
        )

    def _edit_problem(self, params: dict[str, Any]) -> str | None:
        """Telegram's 400 description for an editMessageText it refuses, or None."""
        chat = _chat_id(params)
        message_id = str(params.get("message_id", ""))
        if chat is None or not message_id.isdigit():
            return "Bad Request: message to edit not found"
        text = str(params.get("text", ""))
        if not text.strip():
            return "Bad Request: message text is empty"
        if len(text) > MAX_TEXT:
            return "Bad Request: MESSAGE_TOO_LONG"
        stored = self.messages.get((chat, int(message_id)))
        if stored is None:
            return "Bad Request: message to edit not found"
        if not stored.by_bot or not stored.editable or time.time() - stored.date > EDIT_WINDOW:
            return "Bad Request: message can't be edited"
        if stored.text is None:
            return "Bad Request: there is no text in the message to edit"
        if stored.text == text and stored.reply_markup == params.get("reply_markup"):
            return NOT_MODIFIED
        return None

    def _edit(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = _chat_id(params)
        assert chat is not None
        stored = self.messages[(chat, int(params["message_id"]))]
        stored.text = str(params["text"])
        stored.reply_markup = params.get("reply_markup")
        stored.edits += 1
        message = self._message(params)
        message["date"] = int(stored.date)
        message["edit_date"] = int(time.time())
        return message

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates:
            self._new_update.clear()
            timeout = min(float(params.get("timeout") or 0), 1.0)
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout=timeout)
            except TimeoutError:
                return []
        limit = int(params.get("limit") or 100)
        return self._updates[:limit]

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"]) if str(params.get("chat_id", "")).lstrip("-").isdigit() else 0
        chat: dict[str, Any] = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        if chat_id <= 0:
            chat["title"] = "Test group"
        else:
            chat["first_name"] = "Trader"
        message: dict[str, Any] = {
            "message_id": int(params.get("message_id") or next(self._message_ids)),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "VolSpike", "username": BOT_USERNAME},
        }
        if "text" in params:
            message["text"] = params["text"]
        if isinstance(params.get("reply_markup"), dict):
            message["reply_markup"] = params["reply_markup"]
        return message

    def _photo_message(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._message(params)
        photo = params["photo"]
        width, height = png_size(photo.data) or (0, 0)
        message["photo"] = [
            {
                "file_id": f"photo-{message['message_id']}",
                "file_unique_id": f"u-{message['message_id']}",
                "width": width,
                "height": height,
                "file_size": len(photo.data),
            }
        ]
        if "caption" in params:
            message["caption"] = params["caption"]
        return message


_DELIVERING = {"sendMessage", "copyMessage", "sendPhoto"}
MAX_TEXT = 4096  # characters of a message's text
EDIT_WINDOW = 48 * 3600  # seconds a bot may edit its message
NOT_MODIFIED = (  # Telegram's answer to an edit that changes nothing
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


def _chat_id(params: dict[str, Any]) -> int | None:
    chat = params.get("chat_id")
    return int(chat) if chat is not None and str(chat).lstrip("-").isdigit() else None


MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_CAPTION = 1024
_PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk; None when `data` is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG) or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _photo_problem(params: dict[str, Any]) -> str | None:
    """Telegram's 400 description for a photo it would refuse, or None."""
    if len(str(params.get("caption", ""))) > MAX_CAPTION:
        return "Bad Request: message caption is too long"
    photo = params.get("photo")
    if not isinstance(photo, Upload):
        return "Bad Request: wrong file identifier/HTTP URL specified"
    if len(photo.data) > MAX_PHOTO_BYTES:
        return "Bad Request: file is too big"
    size = png_size(photo.data)
    if size is None:
        return "Bad Request: IMAGE_PROCESS_FAILED"
    width, height = size
    if width + height > 10_000 or max(width, height) > 20 * min(width, height):
        return "Bad Request: PHOTO_INVALID_DIMENSIONS"
    return None


_CHAT_METHODS = {"sendMessage", "copyMessage", "editMessageText", "sendPhoto", "sendInvoice", "getChat"}


def _ok(result: object) -> web.Response:
    return web.Response(body=orjson.dumps({"ok": True, "result": result}), content_type="application/json")


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    """The Bot API's error object; `parameters` is its ResponseParameters (`retry_after`,
    `migrate_to_chat_id`), present only when it has a field."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _get_me(fake: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": BOT_ID,
        "is_bot": True,
        "first_name": "VolSpike",
        "username": BOT_USERNAME,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def _copy(fake: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": int(params.get("message_id") or next(fake._message_ids))}


def _get_chat(fake: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
    chat_id = int(params["chat_id"])
    kind = "private" if chat_id > 0 else ("channel" if str(chat_id).startswith("-100") else "group")
    chat: dict[str, Any] = {"id": chat_id, "type": kind, "accent_color_id": 0, "max_reaction_count": 11}
    # ChatFullInfo requires this object (Bot API 9.0+).
    chat["accepted_gift_types"] = {
        "unlimited_gifts": False,
        "limited_gifts": False,
        "unique_gifts": False,
        "premium_subscription": False,
        "gifts_from_channels": False,
    }
    if kind != "private":
        chat["title"] = "Test chat"
    return chat


_RESULTS: dict[str, Callable[[FakeTelegram, dict[str, Any]], object]] = {
    "getMe": _get_me,
    "sendMessage": FakeTelegram._message,
    "editMessageText": FakeTelegram._message,
    "editMessageReplyMarkup": FakeTelegram._message,
    "sendPhoto": FakeTelegram._photo_message,
    "copyMessage": _copy,
    "getChat": _get_chat,
    "getStarTransactions": lambda fake, params: {"transactions": []},  # a bot nobody has paid yet
    "getWebhookInfo": lambda fake, params: {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": 0,
    },
}
