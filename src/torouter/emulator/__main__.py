"""`python -m torouter.emulator --host H --port P [--specs-dir D]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from torouter.emulator import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m torouter.emulator", description="Run the vendor emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--specs-dir", type=Path, default=None, help="the shared/specs folder used by replay")
    args = parser.parse_args(argv)
    serve(host=args.host, port=args.port, specs_dir=args.specs_dir)


if __name__ == "__main__":
    main()
