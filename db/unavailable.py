"""Which errors mean "PostgreSQL or Redis is unavailable right now", in one place.

Every service loop retries these with capped backoff (`core.backoff.Backoff`) instead of dying: they are what
a restart, a failover, a killed backend (`pg_terminate_backend`), a killed client (`CLIENT KILL`)
or a server still loading its data raise. Anything else (a statement PostgreSQL refused, a
command Redis refused) is a real error of the caller and is handled, or raised, where it happens.
"""

from __future__ import annotations

import asyncio

import asyncpg
from asyncpg import exceptions as pg
from redis import exceptions as rx

PG_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable (TimeoutError is an OSError too)
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # "connection is closed", the pool closing under a call
    # "cannot switch to state …; another operation is in progress": a pooled connection left
    # mid-operation when its backend was killed under it; the pool replaces it on release
    pg.InternalClientError,
    asyncpg.PostgresConnectionError,  # 08xxx, e.g. ConnectionDoesNotExistError mid-query
    pg.AdminShutdownError,  # 57P01: the server is shutting down, or pg_terminate_backend
    pg.CrashShutdownError,  # 57P02
    pg.CannotConnectNowError,  # 57P03: starting up or in recovery
    pg.TooManyConnectionsError,  # 53300
)

REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    asyncio.TimeoutError,
    rx.ConnectionError,  # includes BusyLoadingError (LOADING after a restart)
    rx.TimeoutError,
    rx.ReadOnlyError,  # talking to a replica after a failover
    rx.TryAgainError,
    rx.ClusterDownError,  # includes MasterDownError
    rx.OutOfMemoryError,
)

UNAVAILABLE: tuple[type[Exception], ...] = tuple(dict.fromkeys(PG_UNAVAILABLE + REDIS_UNAVAILABLE))

# Redis error replies of a server that is loading, read-only, failing over or unable to persist;
# redis-py raises some of them as a plain ResponseError.
_REDIS_UNAVAILABLE_REPLIES = (
    "LOADING",
    "READONLY",
    "MASTERDOWN",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MISCONF",
    "OOM",
)

# Subclasses of the classes above that a retry cannot fix: bad settings, not an outage.
_NOT_TRANSIENT: tuple[type[Exception], ...] = (
    pg.ClientConfigurationError,
    pg.UnsupportedClientFeatureError,
    rx.AuthenticationError,
)


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` means PostgreSQL or Redis is down, restarting or unreachable."""
    if isinstance(exc, rx.ResponseError) and str(exc).startswith(_REDIS_UNAVAILABLE_REPLIES):
        return True
    return isinstance(exc, UNAVAILABLE) and not isinstance(exc, _NOT_TRANSIENT)
