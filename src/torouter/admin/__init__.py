"""The admin REST API under /admin/api: keys, groups, upstream accounts, prices and usage.

See docs/admin-api.md. The routes call the same store operations as the CLI.
"""

from __future__ import annotations

from torouter.admin._app import METHODS, PREFIX, AdminAuth, create_admin_app

__all__ = ["METHODS", "PREFIX", "AdminAuth", "create_admin_app"]
