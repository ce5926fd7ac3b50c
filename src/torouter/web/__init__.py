"""The dashboard and the Playground: static pages served by the gateway itself, with no build step."""

from __future__ import annotations

from torouter.web._site import PAGES, StaticSite, load_assets

__all__ = ["PAGES", "StaticSite", "load_assets"]
