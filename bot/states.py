"""The bot's typed-input states (aiogram FSM, kept in Redis): a prompt waits for the user's next
message. `ENDED_BY_COMMANDS` lists the groups a command leaves: a user who sends another command
has moved on, and their next text must not be read as the answer to the old prompt."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class SettingsInput(StatesGroup):
    timezone = State()
    quiet_hours = State()


ENDED_BY_COMMANDS: tuple[type[StatesGroup], ...] = (SettingsInput,)
