"""Typed application keys: everything the webapp's handlers reach through `request.app`."""

from __future__ import annotations

import asyncpg
from aiogram import Bot
from aiohttp import web
from redis.asyncio import Redis

from core.clock import Clock
from core.i18n import I18n
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
I18N = web.AppKey("pages_i18n", I18n)  # the pages', the API's and /ws's translations
INVOICE_BOT = web.AppKey("invoice_bot", Bot)  # the webapp's Bot API client, only with BOT_TOKEN
INVOICE_I18N = web.AppKey("invoice_i18n", I18n)
