"""The Mini App's pages: server-rendered with aiohttp-jinja2, enhanced by the ES modules that
`scripts/frontend.sh` builds from `webapp/frontend/` into `webapp/static/dist/`."""

from __future__ import annotations

from aiohttp import web

from webapp.pages import views
from webapp.pages.templating import STATIC_DIR, setup_templates


def setup_pages(app: web.Application) -> None:
    """Register the templates, the page routes and the static files on `app`."""
    setup_templates(app)
    app.router.add_get("/", views.feed, name="feed")
    app.router.add_get("/markets", views.markets, name="markets")
    app.router.add_get("/chart/{symbol}", views.chart, name="chart")
    app.router.add_get("/watchlist", views.watchlist, name="watchlist")
    app.router.add_get("/settings", views.settings, name="settings")
    app.router.add_get("/plans", views.plans, name="plans")
    app.router.add_get("/record", views.record, name="record")
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
