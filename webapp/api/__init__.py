"""The Mini App's JSON API."""
