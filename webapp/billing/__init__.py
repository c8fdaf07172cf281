"""Stripe billing on VolSpike's own web page: Log In With Telegram, Checkout, the portal, the webhook."""
