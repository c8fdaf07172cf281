"""The Mini App's JSON API: models, route table, handlers and the OpenAPI document."""
