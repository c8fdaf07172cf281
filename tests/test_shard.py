"""INGEST_SHARD: a stable split of the symbols, each in exactly one shard."""

import zlib

import pytest

from core.errors import ConfigError
from core.settings import load_settings
from core.shard import Shard

SYMBOLS = [f"COIN{i}USDT" for i in range(600)] + ["BTCUSDT", "ETHUSDT", "币安人生USDT"]


def test_every_symbol_is_in_exactly_one_shard() -> None:
    shards = [Shard(i, 4) for i in range(4)]
    for symbol in SYMBOLS:
        assert sum(shard.owns(symbol) for shard in shards) == 1, symbol
    sizes = [sum(shard.owns(s) for s in SYMBOLS) for shard in shards]
    assert min(sizes) > len(SYMBOLS) / 4 * 0.7, sizes  # a fair split, not all in one


def test_the_split_is_the_crc32_of_the_symbol_the_same_in_every_process() -> None:
    # Python's hash() of a str changes from process to process; the shard of a symbol must not.
    assert zlib.crc32(b"BTCUSDT") % 2 == 1
    assert Shard(1, 2).owns("BTCUSDT") and not Shard(0, 2).owns("BTCUSDT")
    assert Shard(0, 2).owns("ETHUSDT")


def test_one_shard_owns_everything_and_runs_the_global_jobs() -> None:
    assert all(Shard().owns(s) for s in SYMBOLS)
    assert Shard(0, 3).runs_global_jobs and not Shard(1, 3).runs_global_jobs


def test_lock_keys_differ_per_shard_and_per_count() -> None:
    keys = {Shard(i, n).lock_key for n in range(1, 9) for i in range(n)}
    assert len(keys) == sum(range(1, 9))


@pytest.mark.parametrize("value", ["1", "2/2", "-1/2", "a/b", "0/0", "1/0", "0/1000", "0/2/3"])
def test_malformed_shard_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("INGEST_SHARD", value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    assert "INGEST_SHARD" in str(info.value)


def test_shard_setting_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_SHARD", " 1/3 ")
    assert load_settings(_env_file=None).shard == Shard(1, 3)
    monkeypatch.delenv("INGEST_SHARD")
    assert load_settings(_env_file=None).shard == Shard(0, 1)
