"""Inline keyboards of the user commands."""
