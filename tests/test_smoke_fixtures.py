async def test_db_and_redis_fixtures_are_real(db, redis, names):
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    await redis.set(names.prefix + "x", "1")
    assert await redis.get(names.prefix + "x") == b"1"
