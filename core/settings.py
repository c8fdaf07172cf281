"""One typed settings object, read from the environment and a `.env` file."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import ConfigError
from core.shard import Shard, check_shard


def _url(*schemes: str) -> AfterValidator:
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"must be a {'/'.join(schemes)} URL, got {value!r}")
        return value.rstrip("/")

    return AfterValidator(check)


PostgresUrl = Annotated[str, _url("postgresql", "postgres")]
RedisUrl = Annotated[str, _url("redis", "rediss", "unix")]
HttpUrl = Annotated[str, _url("http", "https")]
WsUrl = Annotated[str, _url("ws", "wss")]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # `BOT_TOKEN=` in .env means "not set"
        extra="ignore",
        case_sensitive=False,
    )

    database_url: PostgresUrl = "postgresql://postgres@127.0.0.1:5432/volspike"
    redis_url: RedisUrl = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "volspike:"

    bot_token: SecretStr | None = None
    telegram_api_url: HttpUrl = "https://api.telegram.org"
    telegram_webhook_url: HttpUrl | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_global_rate: float = Field(25.0, gt=0)
    telegram_paid_broadcast: bool = False  # elite alerts go out with `allow_paid_broadcast`
    alert_max_age: timedelta = Field(timedelta(minutes=30), gt=timedelta(0))  # seconds or ISO 8601
    # A chat's SPIKEs from the N-th within a minute on go out in one digest message (0: off).
    digest_min_symbols: int = Field(4, ge=0)

    binance_rest_url: HttpUrl = "https://fapi.binance.com"
    binance_ws_url: WsUrl = "wss://fstream.binance.com"
    # The Binance URLs point at the built-in simulator (`volspike sim`): alerts say they are simulated.
    use_simulator: bool = False
    include_tradfi: bool = False
    max_streams_per_connection: int = Field(200, ge=1, le=1024)
    history_hours: int = Field(26, ge=2)
    candle_retention_days: int = Field(90, ge=1)
    delivery_retention_days: int = Field(30, ge=1)
    ingest_metrics_port: int | None = Field(None, ge=1, le=65535)
    ingest_shard: Annotated[str, AfterValidator(check_shard)] = "0/1"  # i/n: this process's symbols
    bot_metrics_port: int | None = Field(None, ge=1, le=65535)  # the bot's own /metrics (delivery)

    webapp_host: str = "0.0.0.0"
    webapp_port: int = Field(8080, ge=0, le=65535)
    webapp_workers: int = Field(1, ge=1, le=64)  # webapp processes sharing the port (SO_REUSEPORT)
    webapp_url: HttpUrl | None = None
    telegram_app_link: HttpUrl | None = None  # t.me link that opens the Mini App, for the public view
    initdata_max_age: int = Field(86_400, ge=1)  # seconds: older Mini App initData is refused
    alert_ingest_api_key: SecretStr | None = None  # the original ingest endpoint is off without it
    metrics_token: SecretStr | None = None  # without it /metrics answers on loopback only
    api_rate_per_ip: int = Field(600, ge=1)  # requests per minute per client address
    api_rate_per_user: int = Field(300, ge=1)  # requests per minute per Telegram user
    # Seconds a connection may take for its request line and headers (from connecting or from its
    # previous answer: also the idle keep-alive), and for its body; slower clients are cut off.
    # Reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For / Forwarded / X-Real-IP
    # name the client (webapp.client_address); empty: every peer is the client itself.
    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = ()
    webapp_header_timeout: float = Field(15.0, gt=0)
    webapp_body_timeout: float = Field(30.0, gt=0)

    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    spike_multiple: float = Field(3.0, gt=1.0)
    spike_min_quote_volume: float = Field(3_000_000, ge=0)

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_price_pro: str | None = None
    stripe_price_elite: str | None = None
    stripe_api_base: HttpUrl = "https://api.stripe.com"  # any Stripe-compatible API server
    # Log In With Telegram (OpenID Connect); the client id is the bot's id, the secret is BotFather's.
    telegram_oauth_client_secret: SecretStr | None = None
    telegram_oauth_issuer: str = "https://oauth.telegram.org"
    telegram_oauth_authorize_url: HttpUrl = "https://oauth.telegram.org/auth"
    telegram_oauth_token_url: HttpUrl = "https://oauth.telegram.org/token"
    telegram_oauth_jwks_url: HttpUrl = "https://oauth.telegram.org/.well-known/jwks.json"
    stars_price_pro: int = Field(250, ge=1)
    stars_price_elite: int = Field(750, ge=1)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",") if item.strip()]
            try:
                return frozenset(int(item) for item in items)
            except ValueError:
                raise ValueError(f"must be comma-separated Telegram user ids, got {value!r}") from None
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        """`10.0.0.0/8, 192.168.1.7` (a bare address is its own /32 or /128)."""
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("alert_max_age", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """`ALERT_MAX_AGE=1800` means seconds (an ISO 8601 duration such as `PT30M` works too)."""
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "webapp_url",
        "telegram_webhook_url",
        "stripe_price_pro",
        "stripe_price_elite",
        "ingest_metrics_port",
        "bot_metrics_port",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/") or "postgres"

    @property
    def shard(self) -> Shard:
        return Shard.parse(self.ingest_shard)

    @property
    def stripe_enabled(self) -> bool:
        return self.stripe_secret_key is not None and self.stripe_webhook_secret is not None

    @property
    def spike_min_quote_volume_decimal(self) -> Decimal:
        return Decimal(str(self.spike_min_quote_volume))


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; raise ConfigError with one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        message = first["msg"].removeprefix("Value error, ")
        value = first.get("input")
        shown = (
            "" if isinstance(value, dict) or name.endswith(("TOKEN", "KEY", "SECRET")) else f" ({value!r})"
        )
        raise ConfigError(f"invalid setting {name}{shown}: {message}") from None
