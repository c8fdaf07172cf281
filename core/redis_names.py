"""Every Redis key and stream name, in one place, under a configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass

from core.shard import Shard


@dataclass(frozen=True, slots=True)
class RedisNames:
    prefix: str = "volspike:"

    @property
    def alerts_stream(self) -> str:
        """Stream `alerts`: one entry per alert row, field `alert` = the alert JSON."""
        return f"{self.prefix}alerts"

    @property
    def delivery_group(self) -> str:
        return "delivery"

    @property
    def market(self) -> str:
        """Hash symbol -> JSON live state (price, 24h change, hour volumes, ratio, funding)."""
        return f"{self.prefix}market"

    @property
    def candles_channel(self) -> str:
        """Pub/sub channel for live candle updates (Mini App charts)."""
        return f"{self.prefix}candles"

    @property
    def alerts_channel(self) -> str:
        """Pub/sub channel for live alerts (Mini App feed)."""
        return f"{self.prefix}alerts:live"

    def market_snapshot(self, tier: str) -> str:
        """The market table as a tier sees it between refreshes (free 15 min, pro 5 min)."""
        return f"{self.prefix}market:snapshot:{tier}"

    def rate_limit(self, scope: str, who: str, window: int) -> str:
        """Request counter of one client (`scope` ip or user) in one fixed window."""
        return f"{self.prefix}ratelimit:{scope}:{who}:{window}"

    def answer_cache(self, key: str) -> str:
        """A cached HTTP answer (UDF, candles) for a few seconds."""
        return f"{self.prefix}answer:{key}"

    @property
    def ingest_health(self) -> str:
        """JSON snapshot of ingest's state, refreshed every few seconds with a TTL."""
        return f"{self.prefix}health:ingest"

    def ingest_shard_health(self, shard: Shard) -> str:
        """The snapshot of one shard's leader: `ingest_health` itself when there is one shard."""
        return self.ingest_health if shard.count == 1 else f"{self.ingest_health}:{shard}"

    @property
    def ingest_shards(self) -> str:
        """Hash shard (`i/n`) → epoch ms of its leader's latest snapshot, for `/health`."""
        return f"{self.ingest_health}:shards"

    def ingest_standby_health(self, shard: Shard) -> str:
        """Written by a process standing by for the shard's lock."""
        return f"{self.ingest_shard_health(shard)}:standby"

    @property
    def bot_health(self) -> str:
        return f"{self.prefix}health:bot"

    @property
    def service_crashes(self) -> str:
        """Hash service → its latest crash under the supervisor (`db.service_crashes`)."""
        return f"{self.prefix}health:crashes"

    def telegram_update(self, update_id: int) -> str:
        """Set once per webhook update handled (with a TTL): a redelivered update is ignored."""
        return f"{self.prefix}tg:update:{update_id}"

    def chart_cooldown(self, user_id: int) -> str:
        """When the user last had a chart image rendered (the bot's clock, in ms)."""
        return f"{self.prefix}chart:last:{user_id}"

    def chart_press(self, callback_query_id: str) -> str:
        """Set once per Chart button press handled (with a TTL): a redelivered press sends nothing."""
        return f"{self.prefix}chart:press:{callback_query_id}"

    def throttle(self, user_id: int) -> str:
        return f"{self.prefix}throttle:{user_id}"

    @property
    def fsm(self) -> str:
        return f"{self.prefix}fsm"

    def web_session(self, token: str) -> str:
        """A browser's signed-in session on the web (outside Telegram), with a TTL."""
        return f"{self.prefix}websession:{token}"

    def support_thread(self, admin_chat_id: int, message_id: int) -> str:
        """The user behind a support message forwarded into an admin's chat, with a TTL, so the
        admin's reply to it reaches that user."""
        return f"{self.prefix}support:{admin_chat_id}:{message_id}"

    def oidc_login(self, state: str) -> str:
        """A Log In With Telegram attempt in flight (nonce, PKCE verifier), used once, with a TTL."""
        return f"{self.prefix}oidc:{state}"


ALERTS_STREAM_MAXLEN = 100_000
