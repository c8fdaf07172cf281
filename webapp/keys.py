"""Typed application keys: everything the webapp's handlers reach through `request.app`."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from core.clock import Clock
from core.redis_names import RedisNames
from core.settings import Settings
from webapp.cache import AnswerCache
from webapp.universe import SymbolUniverse

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)
NAMES = web.AppKey("names", RedisNames)
CLOCK = web.AppKey("clock", Clock)
UNIVERSE = web.AppKey("universe", SymbolUniverse)
ANSWERS = web.AppKey("answers", AnswerCache)
