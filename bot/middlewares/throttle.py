"""Per-user flood control: a token bucket in Redis (burst BURST, refilled RATE per second).

It is the first middleware: a throttled update costs one Redis call and nothing else, no
database write (the user upsert runs after it). Within the budget every update passes. The
first update over it gets one "slow down" reply (answer to a message, or a callback-query toast)
in the sender's Telegram language, since their saved one is not loaded yet; further excess of the
same burst is dropped silently. A burst ends when the bucket is full again (the sender paused for
BURST / RATE seconds): only then can another notice come, so a flood gets one notice however
long it goes on, although single updates still pass as tokens trickle back. The time is the
bot's clock (the same wall clock in every bot process). Payment updates are never throttled (a
paid invoice must always be recorded).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User
from aiogram.utils.i18n import I18n
from redis.asyncio import Redis

from bot.payments.updates import is_payment_update
from core.clock import Clock
from core.i18n import N_, pick_locale
from core.redis_names import RedisNames

SLOW_DOWN = N_("Slow down, please: too many requests. Try again in a few seconds.")

BURST = 5
RATE = 2.0  # tokens per second: sustained one update per 0.5 s

# KEYS[1] bucket hash; ARGV burst, rate, now (seconds). Returns 1 allowed, 0 refused (first time
# in this burst: notify), -1 refused. `told` is cleared only by a full bucket.
_BUCKET = """
local now = tonumber(ARGV[3])
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'told')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local told = state[3] or '0'
if tokens >= burst then
    told = '0'
end
local result
if tokens >= 1 then
    tokens = tokens - 1
    redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now, 'told', told)
    result = 1
elseif told == '1' then
    redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
    result = -1
else
    redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now, 'told', 1)
    result = 0
end
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return result
"""


class ThrottleMiddleware(BaseMiddleware):
    def __init__(self, i18n: I18n, burst: int = BURST, rate: float = RATE) -> None:
        self.i18n = i18n
        self.burst = burst
        self.rate = rate

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        sender: User | None = data.get("event_from_user")
        if sender is None or sender.is_bot or is_payment_update(event):
            return await handler(event, data)
        redis: Redis = data["redis"]
        names: RedisNames = data["names"]
        clock: Clock = data["clock"]
        now = clock.now().timestamp()
        verdict = int(await redis.eval(_BUCKET, 1, names.throttle(sender.id), self.burst, self.rate, now))
        if verdict == 1:
            return await handler(event, data)
        if verdict == 0 and isinstance(event, Update):
            notice = self.i18n.gettext(SLOW_DOWN, locale=pick_locale(sender.language_code))
            if isinstance(event.message, Message) and event.message.chat.type == "private":
                await event.message.answer(notice)
            elif isinstance(event.callback_query, CallbackQuery):
                await event.callback_query.answer(notice)
        return None
