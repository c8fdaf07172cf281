"""Time zones and quiet hours as users type them; pure functions.

Time zones: IANA names (`Europe/Istanbul`, case-insensitive) or fixed offsets `UTC+3`, `GMT-5`,
`+03:00`, `UTC+5:30`. Whole-hour offsets are stored as the IANA `Etc/GMT∓N` zone (note POSIX's
inverted sign: UTC+3 is `Etc/GMT-3`); other offsets are refused with the same hint, since
PostgreSQL and zoneinfo both need a named zone.
Cities: the zone's exemplar city in the user's language or in English (`Москва`, `Moscú`,
`Moscow`, `new york`), from the CLDR data that babel ships, case-insensitive.
Quiet hours: `HH:MM-HH:MM` (`22:00-07:00` runs across midnight) in the user's zone.
"""

from __future__ import annotations

import re
from datetime import time
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.core import get_global
from babel.dates import get_timezone_location

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_RANGE = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*[-–—]\s*(\d{1,2})(?::(\d{2}))?$")


@cache
def _zones_by_lower() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def _city_key(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").split()).casefold()


@cache
def _zones_by_city(locale: str) -> dict[str, str]:
    """Exemplar city (as `_city_key`) → IANA zone, for `locale` and English. Old alias names
    (`Europe/Kiev`, `Europe/Belfast`) give way to the zone they stand for."""
    aliases = get_global("zone_aliases")
    cities: dict[str, str] = {}
    for zone in sorted(available_timezones()):
        if "/" not in zone or zone in aliases or zone.startswith(("Etc/", "SystemV/")):
            continue
        names = {zone.rsplit("/", 1)[1]}
        for lang in {locale, "en"}:
            try:
                names.add(get_timezone_location(zone, locale=lang, return_city=True))
            except (LookupError, ValueError):
                continue
        for name in names:
            cities.setdefault(_city_key(name), zone)
    for alias, zone in sorted(aliases.items()):  # `Kiev`, `Calcutta`: the old spelling still finds it
        if "/" in alias and zone in available_timezones():
            cities.setdefault(_city_key(alias.rsplit("/", 1)[1]), zone)
    return cities


def parse_timezone(text: str, locale: str = "en") -> str | None:
    """The IANA zone name for what the user typed (a zone, an offset or a city in `locale` or
    English), or None when it is not a zone we can use."""
    value = text.strip()
    if value.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    match = _OFFSET.match(value)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if minutes or hours > 14 or (sign == "-" and hours > 12):
            return None
        if hours == 0:
            return "UTC"
        return f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
    name = _zones_by_lower().get(value.lower()) or _zones_by_city(locale).get(_city_key(value))
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def display_timezone(zone: str) -> str:
    """`Etc/GMT-3` back to `UTC+3` for people; other names unchanged."""
    if zone.startswith("Etc/GMT") and len(zone) > len("Etc/GMT"):
        offset = zone[len("Etc/GMT") :]
        return f"UTC{'+' if offset[0] == '-' else '-'}{offset[1:]}"
    return zone


def app_time_zone(zone: str) -> str | None:
    """The zone the Mini App writes times in: the user's own choice, or None (the device's zone)
    while the setting is still the default UTC that most users never chose. The bot's messages
    keep the setting itself, UTC included."""
    return None if zone == "UTC" else zone


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    match = _RANGE.match(text.strip())
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) if g else 0 for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        return None
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        return None
    return start, end


def format_quiet_hours(start: time | None, end: time | None) -> str | None:
    if start is None or end is None:
        return None
    return f"{start:%H:%M}–{end:%H:%M}"


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    """Whether a local wall-clock time falls in [start, end), which may run across midnight."""
    if start < end:
        return start <= local < end
    return local >= start or local < end
