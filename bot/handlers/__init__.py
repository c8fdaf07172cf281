"""Every router of the bot, in the order updates try them; the fallback router is last."""

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
from core.settings import Settings


def get_routers(config: Settings) -> list[Router]:
    return [
        errors.build_router(config),  # the error handler only; sees errors of every router
        payments.build_router(config),  # payment updates first: nothing else may take them
        subscription.build_router(),
        support.build_router(config),
        start.build_router(config),
        alerts.build_router(config),
        watchlist.build_router(config),
        settings.build_router(config),
        status.build_router(config),
        language.build_router(config),
        stop.build_router(config),
        admin.build_router(config),
        payments.build_admin_router(config),
        support.build_admin_router(config),
        broadcast.build_router(config),
        mute.build_router(config),
        chart.build_router(config),
        connect.build_router(config),
        errors.build_fallback_router(config),  # unknown commands: must stay last
    ]
