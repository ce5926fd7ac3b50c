"""`python -m torouter` is the `torouter` command."""

from __future__ import annotations

from torouter.cli import main

main()
