"""The leader's periodic jobs share one scheduling rule (ingest/jobs.py): a run that fails on
PostgreSQL or the network is logged and left for the next interval (the job stays scheduled), other
errors are not swallowed, runs never overlap, and retention's first run waits one interval."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingest.jobs import schedule_job


async def test_a_failed_run_is_logged_and_the_job_stays(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    async def run_once() -> None:
        calls.append(1)
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        schedule_job(scheduler, "outcomes", run_once, what="alert outcomes", interval=timedelta(minutes=1))
        job = scheduler.get_job("outcomes")
        assert job.max_instances == 1 and job.coalesce
        assert abs((job.next_run_time - datetime.now(UTC)).total_seconds()) < 5  # at once
        with caplog.at_level(logging.ERROR, logger="ingest.jobs"):
            await job.func()
            await job.func()
        assert len(calls) == 2
        assert [r.getMessage() for r in caplog.records if r.name == "ingest.jobs"] == [
            "alert outcomes failed; retrying at the next run"
        ] * 2
        assert scheduler.get_job("outcomes") is not None
    finally:
        scheduler.shutdown(wait=False)


async def test_a_bug_is_not_swallowed_and_the_first_run_may_wait_an_interval() -> None:
    async def run_once() -> None:
        raise ValueError("a bug")

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        schedule_job(
            scheduler,
            "retention",
            run_once,
            what="retention",
            interval=timedelta(hours=1),
            first_run_now=False,
        )
        job = scheduler.get_job("retention")
        wait = (job.next_run_time - datetime.now(UTC)).total_seconds()
        assert 3590 < wait <= 3600
        with pytest.raises(ValueError):
            await job.func()
    finally:
        scheduler.shutdown(wait=False)
