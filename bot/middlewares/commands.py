"""Commands as users type them: `/WATCH btc` is `/watch btc` (the command word only, before any
`@botname`), for every handler at once; and a command ends the typed-input prompt it interrupts
(`bot.states.ENDED_BY_COMMANDS`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, TelegramObject

from bot.states import ENDED_BY_COMMANDS


def lower_command(text: str) -> str:
    """`/Watch@VolSpikeBot BTC` → `/watch@VolSpikeBot BTC`: the arguments keep their case."""
    word, sep, rest = text.partition(" ")
    name, at, mention = word.partition("@")
    return f"{name.lower()}{at}{mention}{sep}{rest}"


class CommandMiddleware(BaseMiddleware):
    """An outer middleware of the Dispatcher's message observer."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, Message) and event.text and event.text.startswith("/"):
            lowered = lower_command(event.text)
            if lowered != event.text:
                event = event.model_copy(update={"text": lowered})
            state: FSMContext | None = data.get("state")
            if state is not None:
                current = await state.get_state()
                if current is not None and any(
                    current in group.__all_states_names__ for group in ENDED_BY_COMMANDS
                ):
                    await state.clear()
                    data["raw_state"] = None  # what the state filters of this update read
        return await handler(event, data)
