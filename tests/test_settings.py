"""Settings: typed, validated, one clear line for a bad value."""

import pytest

from core.errors import ConfigError
from core.settings import load_settings


def test_defaults_match_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "SPIKE_MULTIPLE", "SPIKE_MIN_QUOTE_VOLUME", "BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings(_env_file=None)
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/volspike"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.spike_multiple == 3.0 and s.spike_min_quote_volume == 3_000_000
    assert s.bot_token is None and s.webapp_port == 8080 and s.webapp_host == "0.0.0.0"
    assert s.database_name == "volspike"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPIKE_MULTIPLE", "abc"),
        ("SPIKE_MULTIPLE", "0.5"),
        ("SPIKE_MIN_QUOTE_VOLUME", "lots"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("REDIS_URL", "localhost:6379"),
        ("WEBAPP_PORT", "99999"),
        ("ADMIN_IDS", "12,abc"),
        ("BINANCE_WS_URL", "https://fstream.binance.com"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_malformed_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    message = str(info.value)
    assert name in message and "\n" not in message


def test_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "")
    monkeypatch.setenv("BOT_TOKEN", "123:hush-hush-token")
    s = load_settings(_env_file=None)
    assert "hush-hush" not in repr(s) and "hush-hush" not in str(s)
    assert s.bot_token is not None and s.bot_token.get_secret_value() == "123:hush-hush-token"
    assert s.telegram_webhook_secret is None


def test_dotenv_file_is_read_and_empty_means_unset(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SPIKE_MULTIPLE", "BOT_TOKEN", "ADMIN_IDS"):
        monkeypatch.delenv(name, raising=False)
    env = tmp_path / ".env"
    env.write_text("SPIKE_MULTIPLE=4.5\nBOT_TOKEN=\nADMIN_IDS=1, 2,3\n")
    s = load_settings(_env_file=str(env))
    assert s.spike_multiple == 4.5
    assert s.bot_token is None
    assert s.admin_ids == frozenset({1, 2, 3})


def test_environment_overrides_dotenv(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("SPIKE_MULTIPLE=4.5\n")
    monkeypatch.setenv("SPIKE_MULTIPLE", "5")
    assert load_settings(_env_file=str(env)).spike_multiple == 5.0


def test_env_example_documents_every_setting_and_loads() -> None:
    import re
    from pathlib import Path

    from core.settings import Settings

    text = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert {name.upper() for name in Settings.model_fields} <= documented
    load_settings(_env_file=Path(__file__).resolve().parent.parent / ".env.example")
