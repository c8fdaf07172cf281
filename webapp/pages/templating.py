"""Jinja2 for the pages: autoescaped templates, gettext from the bot's catalogs, asset URLs.

Translations come from the same compiled catalogs as the bot (`core.i18n.create_i18n`): the
templates call `_()` / `gettext()`, resolved per request with the page's `locale`. A page's
language is `webapp.locale.page_locale`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import cache
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from core.i18n import DEFAULT_LOCALE, SUPPORTED_LOCALES, create_i18n
from core.resources import package_dir
from webapp.keys import I18N
from webapp.locale import page_locale

log = logging.getLogger(__name__)

WEBAPP_DIR = package_dir("webapp")
TEMPLATES_DIR = WEBAPP_DIR / "templates"
STATIC_DIR = WEBAPP_DIR / "static"
DIST_DIR = STATIC_DIR / "dist"


@cache
def _asset_version(name: str) -> str:
    path = DIST_DIR / name
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    except FileNotFoundError:
        log.warning("frontend asset missing: run scripts/frontend.sh build_assets", extra={"asset": name})
        return "missing"


@cache
def _manifest() -> dict[str, list[str]]:
    try:
        manifest: dict[str, list[str]] = json.loads((DIST_DIR / "manifest.json").read_text())
    except FileNotFoundError:
        return {}
    return manifest


def module_preloads(entry: str) -> list[str]:
    """The shared chunks `entry` imports: preloaded with the page, not discovered after it."""
    return [f"/static/dist/{chunk}" for chunk in _manifest().get(entry, [])]


def asset_url(name: str) -> str:
    """`/static/dist/<name>?v=<content hash>`: a new build is never served from a stale cache."""
    return f"/static/dist/{name}?v={_asset_version(name)}"


def setup_templates(app: web.Application) -> None:
    i18n = create_i18n()
    app[I18N] = i18n

    @jinja2.pass_context
    def gettext(context: jinja2.runtime.Context, message: str) -> str:
        return i18n.gettext(message, locale=context.get("locale", DEFAULT_LOCALE))

    @jinja2.pass_context
    def ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
        return i18n.gettext(singular, plural, n, locale=context.get("locale", DEFAULT_LOCALE))

    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        extensions=["jinja2.ext.i18n"],
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=False)  # type: ignore[attr-defined]
    env.globals["asset_url"] = asset_url
    env.globals["module_preloads"] = module_preloads
    env.globals["locales"] = SUPPORTED_LOCALES


def render(request: web.Request, template: str, context: dict[str, Any]) -> web.Response:
    locale = page_locale(request)
    response = aiohttp_jinja2.render_template(template, request, {"locale": locale, **context})
    response.headers["Content-Language"] = locale
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response
