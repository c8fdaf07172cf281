"""Every router of the bot, in the order updates try them; the fallback router is last.

Handlers are module-level functions that take what they need by name from the Dispatcher's
workflow data (settings, pool, redis, names, clock, i18n, charts) or from the middlewares (user,
state); no router is built from settings. Each module's `build_router()` only registers its
handlers on a new Router, because aiogram attaches a Router to one parent only and a process
builds more than one Dispatcher (the webhook's and the bot's, one per restart of the bot
by the supervisor, one per test)."""

from __future__ import annotations

from aiogram import Router

from bot.handlers import (
    admin,
    alerts,
    broadcast,
    chart,
    connect,
    errors,
    language,
    mute,
    payments,
    settings,
    start,
    status,
    stop,
    subscription,
    support,
    watchlist,
)


def get_routers() -> list[Router]:
    return [
        errors.build_router(),  # the error handler only; sees errors of every router
        payments.build_router(),  # payment updates first: nothing else may take them
        subscription.build_router(),
        support.build_router(),
        start.build_router(),
        alerts.build_router(),
        watchlist.build_router(),
        settings.build_router(),
        status.build_router(),
        language.build_router(),
        stop.build_router(),
        admin.build_router(),
        payments.build_admin_router(),
        support.build_admin_router(),
        broadcast.build_router(),
        mute.build_router(),
        chart.build_router(),
        connect.build_router(),
        errors.build_fallback_router(),  # unknown commands: must stay last
    ]
