"""Which symbols one ingest process follows: `INGEST_SHARD=i/n` keeps the symbols whose stable
hash (CRC-32 of the symbol name, the same in every process and Python version, unlike `hash()`)
modulo `n` is `i`. The default `0/1` is one shard with everything.

Shard 0 also runs what is global to all shards: the `symbols` table refresh and the retention
job (partitions, old mark snapshots and deliveries).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

MAX_SHARDS = 256
# Advisory lock keys of the shard leaders start here ("VOLS" << 16); the bot's job locks
# (`bot.payments.scheduler`) are other keys.
LEADER_LOCK_BASE = 0x564F_4C53_0000  # "VOLS" << 16


@dataclass(frozen=True, slots=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`"i/n"` with 0 <= i < n <= MAX_SHARDS; ValueError otherwise."""
        index, sep, count = text.strip().partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise ValueError(f"must be i/n (e.g. 0/2), got {text!r}")
        shard = cls(int(index), int(count))
        if not 1 <= shard.count <= MAX_SHARDS or shard.index >= shard.count:
            raise ValueError(f"must be i/n with 0 <= i < n <= {MAX_SHARDS}, got {text!r}")
        return shard

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, symbol: str) -> bool:
        return self.count == 1 or zlib.crc32(symbol.encode()) % self.count == self.index

    @property
    def runs_global_jobs(self) -> bool:
        """The `symbols` table refresh and the retention job run in shard 0 only."""
        return self.index == 0

    @property
    def lock_key(self) -> int:
        """The PostgreSQL advisory lock its leader holds (one per shard, whatever `count` is,
        so two deployments with different counts never share a key for different slices)."""
        return LEADER_LOCK_BASE + self.count * MAX_SHARDS + self.index


def check_shard(text: str) -> str:
    """The settings validator: the text stays a string, `Settings.shard` parses it."""
    return str(Shard.parse(text))
