"""The gettext catalogs: complete in every language, same placeholders, not stale against the code.

Extraction here matches the documented command:
`pybabel extract -F babel.cfg -k N_ -k t --no-location --sort-output -o locales/messages.pot .`
English needs no translations (an empty msgstr falls back to the msgid). A plural message
(`ngettext`) is known by its singular msgid and needs every plural form of the language.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import create_i18n
from core.i18n import DEFAULT_LOCALE, LOCALES_DIR, SUPPORTED_LOCALES
from tests.bot_harness import compile_catalogs

ROOT = Path(__file__).resolve().parent.parent
TRANSLATED = [code for code in SUPPORTED_LOCALES if code != DEFAULT_LOCALE]
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "t": None}
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


def extracted_msgids() -> set[str]:
    found = [
        *extract_from_dir(ROOT / "bot", method_map=[("**.py", "python")], keywords=KEYWORDS),
        *extract_from_dir(ROOT / "core", method_map=[("**.py", "python")], keywords=KEYWORDS),
        *extract_from_dir(ROOT / "webapp" / "api", method_map=[("**.py", "python")], keywords=KEYWORDS),
        *extract_from_dir(
            ROOT / "webapp" / "templates",
            method_map=[("**.html", "jinja2")],
            options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
            keywords=KEYWORDS,
        ),
    ]
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def key(message_id: str | tuple[str, ...]) -> str:
    """A message by its msgid; a plural one by its singular msgid."""
    return message_id if isinstance(message_id, str) else message_id[0]


def catalog(locale: str) -> Catalog:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=locale)


@pytest.fixture(scope="module")
def msgids() -> set[str]:
    ids = extracted_msgids()
    assert len(ids) > 50  # the extraction really ran over the bot
    return ids


def test_babel_config_covers_the_bot_package_and_the_page_templates():
    config = (ROOT / "babel.cfg").read_text()
    assert "[python: bot/**.py]" in config
    assert "[python: webapp/api/**.py]" in config
    assert "[jinja2: webapp/templates/**.html]" in config


def test_template_is_not_stale(msgids: set[str]):
    with (LOCALES_DIR / "messages.pot").open("rb") as source:
        template = {key(m.id) for m in read_po(source) if m.id}
    assert sorted(msgids - template) == [], "new messages: run pybabel extract and update"
    assert sorted(template - msgids) == [], "messages gone from the code: run pybabel extract and update"


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_catalog_has_exactly_the_code_messages(locale: str, msgids: set[str]):
    present = {key(m.id) for m in catalog(locale) if m.id}
    assert sorted(msgids - present) == []
    assert sorted(present - msgids) == []


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_message_is_translated_with_the_same_placeholders(locale: str, msgids: set[str]):
    messages = {key(m.id): m for m in catalog(locale) if m.id}
    forms = catalog(locale).num_plurals

    def texts(mid: str) -> list[str]:
        string = messages[mid].string
        return [string] if isinstance(string, str) else list(string)

    untranslated = [mid for mid in sorted(msgids) if not all(texts(mid))]
    assert untranslated == []
    fuzzy = [mid for mid in sorted(msgids) if messages[mid].fuzzy]
    assert fuzzy == []
    for mid in sorted(msgids):
        if not isinstance(messages[mid].string, str):
            assert len(texts(mid)) == forms, (locale, mid)
        for text in texts(mid):
            assert sorted(_PLACEHOLDER.findall(text)) == sorted(_PLACEHOLDER.findall(mid)), (
                locale,
                mid,
                text,
            )
            assert text.count("<") == mid.count("<"), (locale, mid, text)  # same HTML markup


def test_compiled_catalogs_translate_at_runtime():
    compile_catalogs()
    i18n = create_i18n()
    msgid = "Choose your language:"
    answers = {code: i18n.gettext(msgid, locale=code) for code in SUPPORTED_LOCALES}
    assert answers["en"] == msgid
    assert answers == {
        "en": msgid,
        "ru": "Выберите язык:",
        "es": "Elige tu idioma:",
        "tr": "Dilinizi seçin:",
        "uk": "Оберіть мову:",
    }
