"""Broadcasts end to end: preview, confirm, progress, blocked users, cancel, resume after a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.delivery.broadcast import BroadcastRunner
from bot.delivery.limiter import RateLimiter
from bot.i18n import create_i18n
from core.settings import Settings
from db import broadcasts as broadcasts_db
from tests.bot_harness import ADMIN_ID, RunningBot, running_bot
from tests.delivery_harness import poll_until

USERS = [8001, 8002, 8003, 8004]


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    async with running_bot(settings, db, redis) as running:
        await running.add_user(ADMIN_ID)
        for user in USERS:
            await running.add_user(user)
        yield running


@contextlib.asynccontextmanager
async def runner(app: RunningBot, *, rate: float = 25.0) -> AsyncIterator[BroadcastRunner]:
    broadcasts = BroadcastRunner(
        app.bot, app.pool, create_i18n(), RateLimiter(rate), poll=0.05, progress_every=0.1
    )
    task = asyncio.create_task(broadcasts.run())
    try:
        yield broadcasts
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def broadcast_row(app: RunningBot) -> asyncpg.Record:
    row = await app.pool.fetchrow("SELECT * FROM broadcasts ORDER BY id DESC LIMIT 1")
    assert row is not None
    return row


async def status_is(app: RunningBot, status: str) -> bool:
    return (await broadcast_row(app))["status"] == status


async def draft_and_confirm(app: RunningBot, command: str, **kwargs: object) -> int:
    """Draft, then press Send; the preview and the question are not counted as broadcast messages."""
    replies = await app.send(ADMIN_ID, command, expect=1 if "reply_to" in kwargs else 2, **kwargs)
    question = replies[-1]
    broadcast_id = (await broadcast_row(app))["id"]
    buttons = question.params["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == [f"bc:go:{broadcast_id}", f"bc:no:{broadcast_id}"]
    await app.press(ADMIN_ID, f"bc:go:{broadcast_id}", message_id=4321)
    return int(broadcast_id)


async def test_broadcast_previews_confirms_sends_once_and_reports_progress(app: RunningBot):
    await app.add_user(8010)
    await app.pool.execute("UPDATE users SET blocked = true WHERE id = 8004")  # blocked earlier
    await app.pool.execute("UPDATE users SET banned = true WHERE id = 8003")
    app.tg.blocked_chats.add(8010)  # will answer 403
    preview, question = await app.send(ADMIN_ID, "/broadcast Maintenance at 02:00 <UTC>", expect=2)
    assert preview.text == "Maintenance at 02:00 <UTC>" and preview.params.get("parse_mode") is None
    assert question.text == "Send the message above to 4 users?"  # admin, 8001, 8002, 8010
    assert await status_is(app, "draft")
    broadcast_id = (await broadcast_row(app))["id"]
    await app.press(ADMIN_ID, f"bc:go:{broadcast_id}", message_id=4321)
    assert await status_is(app, "running")

    async with runner(app):
        await poll_until(lambda: status_is(app, "done"))
        await app.tg.wait_for(lambda calls: "is finished" in _last_edit(app, broadcast_id))
    for user in (8001, 8002, 8010):
        assert [c.text for c in app.tg.calls_to("sendMessage", user)] == ["Maintenance at 02:00 <UTC>"]
    assert not app.tg.calls_to("sendMessage", 8003) and not app.tg.calls_to("sendMessage", 8004)
    row = await broadcast_row(app)
    assert (row["total"], row["sent"], row["blocked"], row["failed"]) == (4, 3, 1, 0)
    assert (
        _last_edit(app, broadcast_id)
        == f"Broadcast #{broadcast_id} is finished.\nSent: 3, blocked: 1, failed: 0 of 4."
    )
    assert await app.pool.fetchval("SELECT blocked FROM users WHERE id = 8010") is True
    actions = await app.pool.fetch("SELECT action, target FROM admin_audit")
    assert [(a["action"], a["target"]) for a in actions] == [("broadcast", str(broadcast_id))]


def _last_edit(app: RunningBot, broadcast_id: int) -> str:
    edits = [c for c in app.tg.calls_to("editMessageText", ADMIN_ID) if c.params.get("message_id") == "4321"]
    return edits[-1].text if edits else ""


async def test_broadcast_of_a_replied_message_is_copied(app: RunningBot):
    original = {"message_id": 55, "date": 0, "chat": {"id": ADMIN_ID, "type": "private"}, "text": "photo"}
    broadcast_id = await draft_and_confirm(app, "/broadcast", reply_to=original)
    assert app.tg.calls_to("copyMessage", ADMIN_ID)[0].params["message_id"] == "55"  # the preview
    async with runner(app):
        await poll_until(lambda: status_is(app, "done"))
    copies = [c for c in app.tg.calls_to("copyMessage") if c.chat_id != ADMIN_ID]
    assert sorted(c.chat_id for c in copies) == USERS
    assert {(c.params["from_chat_id"], c.params["message_id"]) for c in copies} == {(str(ADMIN_ID), "55")}
    assert (await broadcast_row(app))["sent"] == 5 and broadcast_id


async def test_broadcast_without_text_or_reply_gets_usage(app: RunningBot):
    [reply] = await app.send(ADMIN_ID, "/broadcast")
    assert reply.text.startswith("Usage: /broadcast")
    assert await app.pool.fetchval("SELECT count(*) FROM broadcasts") == 0


async def test_a_discarded_draft_is_never_sent(app: RunningBot):
    await app.send(ADMIN_ID, "/broadcast hello", expect=2)
    broadcast_id = (await broadcast_row(app))["id"]
    answer = await app.press(ADMIN_ID, f"bc:no:{broadcast_id}", message_id=4321)
    assert answer.params["text"] == f"Broadcast #{broadcast_id} was cancelled."
    late = await app.press(ADMIN_ID, f"bc:go:{broadcast_id}", message_id=4321)
    assert late.params["text"] == "This broadcast was already sent or cancelled."
    assert await status_is(app, "cancelled")
    assert await app.pool.fetchval("SELECT count(*) FROM broadcast_recipients") == 0


async def test_a_non_admin_pressing_a_broadcast_button_changes_nothing(app: RunningBot):
    await app.send(ADMIN_ID, "/broadcast hello", expect=2)
    broadcast_id = (await broadcast_row(app))["id"]
    for data in (f"bc:go:{broadcast_id}", f"bc:no:{broadcast_id}"):
        answer = await app.press(USERS[0], data, message_id=4321)
        assert answer.params["text"] == "That button has expired."
    assert await status_is(app, "draft")
    assert await app.pool.fetchval("SELECT count(*) FROM admin_audit") == 0


async def test_cancel_stops_a_running_broadcast(app: RunningBot):
    many = list(range(8100, 8140))
    for user in many:
        await app.add_user(user)
    broadcast_id = await draft_and_confirm(app, "/broadcast news")
    async with runner(app, rate=20):
        await app.tg.wait_for(
            lambda calls: len([c for c in calls if c.text == "news" and c.chat_id in many]) >= 4
        )
        await app.press(ADMIN_ID, f"bc:stop:{broadcast_id}", message_id=4321)
        await app.tg.wait_for(lambda calls: "was cancelled" in _last_edit(app, broadcast_id))
        sent_at_cancel = len([c for c in app.tg.calls if c.text == "news" and c.chat_id != ADMIN_ID])
        row = await broadcast_row(app)
    assert row["status"] == "cancelled"
    assert 4 <= row["sent"] < len(many) and row["sent"] == sent_at_cancel
    pending = await app.pool.fetchval(
        "SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = $1 AND status = 'pending'",
        broadcast_id,
    )
    assert pending == row["total"] - row["sent"]
    assert [a["action"] for a in await app.pool.fetch("SELECT action FROM admin_audit ORDER BY id")] == [
        "broadcast",
        "broadcast_cancel",
    ]


async def test_a_running_broadcast_resumes_after_a_restart_without_resending(app: RunningBot):
    broadcast_id = await draft_and_confirm(app, "/broadcast resume me")
    # The previous process sent to 8001, was mid-call to 8002 when it died, never reached the rest.
    await app.pool.execute(
        "UPDATE broadcast_recipients SET status = 'sent' WHERE broadcast_id = $1 AND user_id = 8001",
        broadcast_id,
    )
    await app.pool.execute(
        "UPDATE broadcast_recipients SET status = 'sending' WHERE broadcast_id = $1 AND user_id = 8002",
        broadcast_id,
    )
    async with runner(app):
        await poll_until(lambda: status_is(app, "done"))
    sent_to = sorted(c.chat_id for c in app.tg.calls_to("sendMessage") if c.text == "resume me")
    assert sent_to == [8003, 8004, ADMIN_ID, ADMIN_ID]  # the admin: the preview, then the broadcast
    statuses = dict(
        await app.pool.fetch(
            "SELECT user_id, status FROM broadcast_recipients WHERE broadcast_id = $1", broadcast_id
        )
    )
    assert statuses[8002] == "lost"
    row = await broadcast_row(app)
    assert (row["sent"], row["failed"], row["total"]) == (4, 1, 5)


async def test_a_runner_starting_marks_lost_only_the_rows_of_a_runner_that_died(app: RunningBot):
    """Two owners: a living sibling runner's rows in flight stay `sending` when another runner
    starts; the rows of a runner that died (its owner lock gone) or of no owner become `lost`."""
    broadcast_id = await draft_and_confirm(app, "/broadcast two owners")
    living_conn = await app.pool.acquire()
    dead_conn = await asyncpg.connect(app.settings.database_url)
    try:
        living = await broadcasts_db.take_owner_lock(living_conn)
        dead = await broadcasts_db.take_owner_lock(dead_conn)
        assert await broadcasts_db.claim(app.pool, broadcast_id, 1, owner=living) == [8001]
        assert await broadcasts_db.claim(app.pool, broadcast_id, 1, owner=dead) == [8002]
        assert await broadcasts_db.claim(app.pool, broadcast_id, 1) == [8003]  # claimed before owners
        await dead_conn.close()  # that runner's process died
        starting = BroadcastRunner(app.bot, app.pool, create_i18n(), RateLimiter(25.0))
        async with starting._ownership():
            assert await starting.recover() == 2
        statuses = dict(
            await app.pool.fetch(
                "SELECT user_id, status FROM broadcast_recipients WHERE broadcast_id = $1", broadcast_id
            )
        )
        assert (statuses[8001], statuses[8002], statuses[8003]) == ("sending", "lost", "lost")
        await broadcasts_db.release_owner_lock(living_conn, living)  # now the sibling is gone too
        assert await broadcasts_db.mark_lost(app.pool) == 1
    finally:
        await app.pool.release(living_conn)
        if not dead_conn.is_closed():
            await dead_conn.close()


async def test_a_running_broadcast_writes_its_owner_into_the_rows_it_claims(app: RunningBot):
    broadcast_id = await draft_and_confirm(app, "/broadcast owned")
    async with runner(app) as running:
        await poll_until(lambda: status_is(app, "done"))
        owners = await app.pool.fetch(
            "SELECT DISTINCT claimed_by FROM broadcast_recipients WHERE broadcast_id = $1", broadcast_id
        )
        assert [row["claimed_by"] for row in owners] == [running.owner] and running.owner is not None
