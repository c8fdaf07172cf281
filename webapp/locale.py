"""The language of a request in the public view (no signed-in user to take it from).

The `lang` query parameter, else the `volspike_lang` cookie (the Mini App sets it from the
user's bot language), else the browser's Accept-Language, else English.
"""

from __future__ import annotations

from aiohttp import web

from core.i18n import DEFAULT_LOCALE, pick_locale

LANG_COOKIE = "volspike_lang"


def page_locale(request: web.Request) -> str:
    for candidate in (request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate and pick_locale(candidate) == candidate.lower():
            return candidate.lower()
    accept = request.headers.get("Accept-Language", "")
    for part in accept.split(","):
        code = part.split(";", 1)[0].strip()
        if code and pick_locale(code) != DEFAULT_LOCALE:
            return pick_locale(code)
    return DEFAULT_LOCALE
