"""The bot's view of a Telegram user, loaded (or created) once per update by a middleware."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.tiers import Tier


@dataclass(frozen=True, slots=True)
class BotUser:
    id: int
    language: str
    tier: Tier  # already expiry-adjusted with core.tiers.effective_tier
    tier_expires_at: datetime | None
    banned: bool
    blocked: bool
    created_at: datetime
