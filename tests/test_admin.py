"""Admin commands through the real Dispatcher: grant/revoke/ban/unban/stats/health, connect,
the mute button, audit rows, and non-admins getting the unknown-command answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis

from core.settings import Settings
from db import admin as admin_db
from db import deliveries, retention
from tests.bot_harness import ADMIN_ID, RunningBot, running_bot, seed_symbols
from tests.delivery_harness import add_alert

USER = 4242
UNKNOWN_COMMAND = "I don't know that command"


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    async with running_bot(settings, db, redis) as running:
        await running.add_user(USER)
        await running.add_user(ADMIN_ID)
        yield running


async def audit(app: RunningBot) -> list[tuple[int, str, str | None, dict[str, object]]]:
    rows = await app.pool.fetch("SELECT admin_id, action, target, details FROM admin_audit ORDER BY id")
    return [(r["admin_id"], r["action"], r["target"], r["details"]) for r in rows]


async def user_row(app: RunningBot, user_id: int = USER) -> asyncpg.Record:
    row = await app.pool.fetchrow("SELECT tier, tier_expires_at, banned FROM users WHERE id = $1", user_id)
    assert row is not None
    return row


async def test_grant_with_days_sets_tier_and_expiry_and_is_audited(app: RunningBot):
    [reply] = await app.send(ADMIN_ID, f"/grant {USER} pro 30")
    expires = app.clock.now() + timedelta(days=30)
    assert reply.text == f"User {USER} now has Pro until {expires:%Y-%m-%d %H:%M} UTC."
    row = await user_row(app)
    assert row["tier"] == "pro" and row["tier_expires_at"] == expires
    details = {
        "tier": "pro",
        "expires_at": expires.isoformat(),
        "ok": True,
        "result": "pro",
        "result_expires_at": expires.isoformat(),
    }
    assert await audit(app) == [(ADMIN_ID, "grant", str(USER), details)]


async def test_grant_without_days_is_open_ended_and_revoke_returns_to_free(app: RunningBot):
    [reply] = await app.send(ADMIN_ID, f"/grant {USER} ELITE")
    assert reply.text == f"User {USER} now has Elite with no end date."
    row = await user_row(app)
    assert row["tier"] == "elite" and row["tier_expires_at"] is None
    [reply] = await app.send(ADMIN_ID, f"/revoke {USER}")
    assert reply.text == f"User {USER} is back on the free plan."
    assert (await user_row(app))["tier"] == "free"
    assert [a[1] for a in await audit(app)] == ["grant", "revoke"]


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("/grant", "Usage: /grant <user_id> <free|pro|elite> [days]"),
        (f"/grant {USER}", "Usage: /grant <user_id> <free|pro|elite> [days]"),
        ("/grant abc pro", "Usage: /grant <user_id> <free|pro|elite> [days]"),
        (f"/grant {USER} gold", "Usage: /grant <user_id> <free|pro|elite> [days]"),
        (f"/grant {USER} pro 0", "Usage: /grant <user_id> <free|pro|elite> [days]"),
        (f"/grant {USER} pro 30 extra", "Usage: /grant <user_id> <free|pro|elite> [days]"),
        ("/revoke", "Usage: /revoke <user_id>"),
        ("/ban me", "Usage: /ban <user_id>"),
        ("/unban 1 2", "Usage: /unban <user_id>"),
    ],
)
async def test_bad_arguments_get_the_usage_line_and_change_nothing(app: RunningBot, command: str, usage: str):
    [reply] = await app.send(ADMIN_ID, command)
    assert usage in reply.text.replace("&lt;", "<").replace("&gt;", ">")
    assert (await user_row(app))["tier"] == "free"
    assert await audit(app) == []


async def test_unknown_user_is_reported_and_the_attempt_audited(app: RunningBot):
    [reply] = await app.send(ADMIN_ID, "/grant 777 pro 7")
    assert reply.text == "User 777 has not started the bot yet."
    [(_, action, target, details)] = await audit(app)
    assert (action, target, details["ok"]) == ("grant", "777", False)


async def told(app: RunningBot, before: int) -> str:
    """The message the user is told after an admin command (sent after the admin's reply)."""
    await app.tg.wait_for(lambda _: len(app.replies(USER)) > before)
    [message] = app.replies(USER)[before:]
    return message.text


async def test_ban_stops_the_user_and_unban_lets_them_back(app: RunningBot):
    before = len(app.replies(USER))
    [reply] = await app.send(ADMIN_ID, f"/ban {USER}")
    assert reply.text == f"User {USER} is banned."
    assert (await user_row(app))["banned"] is True
    assert "subscription is cancelled" in await told(app, before)
    [notice] = await app.send(USER, "/help")
    assert notice.text == "Your access to VolSpike has been suspended."
    before = len(app.replies(USER))
    [reply] = await app.send(ADMIN_ID, f"/unban {USER}")
    assert reply.text == f"User {USER} is no longer banned."
    assert (await user_row(app))["banned"] is False
    assert "is restored" in await told(app, before)
    [help_reply] = await app.send(USER, "/help")
    assert "suspended" not in help_reply.text and "/status" in help_reply.text
    assert [(a[1], a[2]) for a in await audit(app)] == [("ban", str(USER)), ("unban", str(USER))]


async def test_admins_cannot_ban_an_admin(app: RunningBot):
    [reply] = await app.send(ADMIN_ID, f"/ban {ADMIN_ID}")
    assert reply.text == "Admins cannot be banned."
    assert (await user_row(app, ADMIN_ID))["banned"] is False


@pytest.mark.parametrize(
    "command",
    [
        f"/grant {USER} elite",
        f"/revoke {USER}",
        f"/ban {USER}",
        "/stats",
        "/health",
        "/broadcast hi",
        "/refund abc",
    ],
)
async def test_non_admins_get_the_unknown_command_answer(app: RunningBot, command: str):
    [reply] = await app.send(USER, command)
    assert UNKNOWN_COMMAND in reply.text
    row = await user_row(app)
    assert row["tier"] == "free" and row["banned"] is False
    assert await audit(app) == []
    assert await app.pool.fetchval("SELECT count(*) FROM broadcasts") == 0


async def test_stats_counts_users_alerts_and_deliveries(app: RunningBot):
    await app.add_user(5001, tier="elite")
    await app.add_user(5002, tier="pro", expires=app.clock.now() - timedelta(days=1))  # expired: free
    alert = await add_alert(app.pool, app.clock.now())
    await app.pool.execute(
        "INSERT INTO deliveries (alert_id, chat_id, status, due_at) VALUES "
        "($1, 1, 'sent', $2), ($1, 2, 'sent', $2), ($1, 3, 'pending', $2), ($1, 4, 'failed', $2), "
        "($1, 5, 'unknown', $2), ($1, 6, 'blocked', $2), ($1, 7, 'expired', $2), ($1, 8, 'unknown', $2)",
        alert.id,
        app.clock.now(),
    )
    [reply] = await app.send(ADMIN_ID, "/stats")
    assert "Users: Free 3, Pro 0, Elite 1" in reply.text
    assert "Alerts today: 1" in reply.text
    assert "Deliveries: sent 2, pending 1, failed 1, blocked 1, unknown 2, expired 1" in reply.text
    assert "Queue: 1 due now, 1 pending in all" in reply.text
    assert "Ingest: not running" in reply.text


async def test_stats_delivery_figures_follow_every_write_path(app: RunningBot):
    """/stats reads per-day counters kept by the database (migration 122): each write path that
    creates, changes or deletes delivery rows (the fan-out's insert, the sender's claim and its
    outcomes, a crash's unknowns, retention) moves them, and they match the rows."""
    alert = await add_alert(app.pool, app.clock.now())
    now = app.clock.now()
    await app.pool.execute(
        "INSERT INTO deliveries (alert_id, chat_id, status, due_at) SELECT $1, c, 'pending', $2 "
        "FROM generate_series(1, 6) c",
        alert.id,
        now,
    )
    async with app.pool.acquire() as conn:
        claimed = await deliveries.claim_due(
            conn, now, 4, max_age=timedelta(hours=1), quiet_priorities=[], owner=None
        )
        assert len(claimed) == 4
        ids = [row["id"] for row in claimed]
        await deliveries.resolve(
            conn,
            [
                deliveries.Outcome(ids[0], "sent", sent_at=now, message_id=1),
                deliveries.Outcome(ids[1], "sent", sent_at=now, message_id=2),
                deliveries.Outcome(ids[2], "blocked", error="403"),
            ],
        )
        assert await deliveries.mark_unknown(conn) == 1  # ids[3]: its claim has no living owner
    [reply] = await app.send(ADMIN_ID, "/stats")
    assert "Deliveries: sent 2, pending 2, failed 0, blocked 1, unknown 1, expired 0" in reply.text
    rows = dict(await app.pool.fetch("SELECT status, count(*) FROM deliveries GROUP BY status"))
    async with app.pool.acquire() as conn:
        figures = await admin_db.stats(conn, now, now.replace(hour=0, minute=0))
    assert figures.deliveries_today == rows
    async with app.pool.acquire() as conn:  # retention: every row is older than tomorrow
        await retention.delete_deliveries_before(conn, datetime.now(UTC) + timedelta(days=1))
        assert (await admin_db.stats(conn, now, now.replace(hour=0, minute=0))).deliveries_today == {}


async def test_health_reports_postgres_redis_ingest_lag_and_queue(app: RunningBot):
    snapshot = {"ok": True, "connections": [{"id": "c0", "lag_ms": 250.0}, {"id": "c1", "lag_ms": 1500.0}]}
    await app.redis.set(app.names.ingest_health, orjson.dumps(snapshot), ex=30)
    [reply] = await app.send(ADMIN_ID, "/health")
    assert "PostgreSQL: ok" in reply.text and "Redis: ok" in reply.text
    assert "Ingest: running, 1.5 s behind" in reply.text
    assert "Deliveries: 0 due now, 0 pending" in reply.text


async def test_mute_button_mutes_the_symbol_for_24_hours(app: RunningBot):
    await seed_symbols(app.pool)  # a mute is honoured for a symbol the universe holds
    answer = await app.press(USER, "mute:BTCUSDT")
    assert answer.params["text"] == "BTCUSDT muted for 24 hours. /mutes lists your mutes."
    until = await app.pool.fetchval("SELECT until FROM mutes WHERE user_id = $1 AND symbol = 'BTCUSDT'", USER)
    assert until == app.clock.now() + timedelta(hours=24)
    bad = await app.press(USER, "mute:<script>")
    assert bad.params["text"] == "That button has expired."
    assert await app.pool.fetchval("SELECT count(*) FROM mutes") == 1


async def test_admin_connects_a_group_in_the_group_and_disconnects_it(app: RunningBot):
    group = -100777
    [reply] = await app.send(ADMIN_ID, "/connect pro", chat_id=group, chat_type="supergroup")
    assert reply.text == "This chat now receives Pro spike alerts in English."
    row = await app.pool.fetchrow("SELECT kind, tier, active, connected_by FROM chats WHERE id = $1", group)
    assert dict(row) == {"kind": "supergroup", "tier": "pro", "active": True, "connected_by": ADMIN_ID}
    [reply] = await app.send(ADMIN_ID, "/disconnect", chat_id=group, chat_type="supergroup")
    assert reply.text == f"Chat {group} no longer receives alerts."
    assert await app.pool.fetchval("SELECT active FROM chats WHERE id = $1", group) is False
    assert [a[1] for a in await audit(app)] == ["connect", "disconnect"]


async def test_admin_connects_a_channel_by_id_after_checking_it(app: RunningBot):
    channel = -1001234567
    [reply] = await app.send(ADMIN_ID, f"/connect {channel} elite")
    assert reply.text == "Test chat now receives Elite spike alerts in English."
    assert app.tg.calls_to("getChat", channel)
    row = await app.pool.fetchrow("SELECT kind, tier FROM chats WHERE id = $1", channel)
    assert dict(row) == {"kind": "channel", "tier": "elite"}

    app.tg.missing_chats.add(-100999)
    [reply] = await app.send(ADMIN_ID, "/connect -100999")
    assert reply.text.startswith("I cannot see chat -100999.")
    [reply] = await app.send(ADMIN_ID, "/connect 12345")
    assert "Usage: /connect" in reply.text
    [reply] = await app.send(ADMIN_ID, f"/disconnect {channel}")
    assert reply.text == f"Chat {channel} no longer receives alerts."
    [reply] = await app.send(ADMIN_ID, f"/disconnect {channel}")
    assert reply.text == f"Chat {channel} is not connected."


async def test_non_admin_cannot_connect_a_group(app: RunningBot):
    app.tg.push_message(USER, "/connect elite", chat_id=-100888, chat_type="supergroup")
    [reply] = await app.send(USER, "/connect -100888")  # then a private message, to sync on
    assert UNKNOWN_COMMAND in reply.text
    assert await app.pool.fetchval("SELECT count(*) FROM chats") == 0
