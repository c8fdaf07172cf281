"""Telegram Stars: plans and invoices, recording payments and refunds exactly once, reconciliation
with getStarTransactions, and the tier lifecycle jobs (expiry, reminders)."""
