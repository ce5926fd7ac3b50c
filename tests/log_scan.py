"""Finding credentials in logs: ToRouter keys, sealed values, auth headers, and the secrets the tests set."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# What a credential looks like wherever it turns up, whoever made it. Each pattern's `secret` group is
# the part to hide when reporting a hit.
PATTERNS: dict[str, re.Pattern[str]] = {
    # A key is sk-tr- and 43 characters; the display prefix (sk-tr- and 6) and masks (sk-tr-****) are fine.
    "ToRouter API key": re.compile(r"(?P<secret>sk-tr-[A-Za-z0-9_-]{16,})"),
    "Fernet token": re.compile(r"(?P<secret>gAAAAA[A-Za-z0-9_-]{20,}=*)"),
    "authorization header": re.compile(
        r"(?i)authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic)\s+(?P<secret>[^\s'\",;<>]{8,})"
    ),
    "api-key header": re.compile(
        r"(?i)\bx-(?:goog-)?api-key['\"]?\s*[:=]\s*['\"]?(?P<secret>[^\s'\",;<>]{8,})"
    ),
    "key in a query string": re.compile(r"[?&]key=(?P<secret>[^&\s'\"<>]{8,})"),
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:(?P<secret>[^/\s@]+)@"),
}
MIN_SECRET = 8  # shorter test credentials ("k", "t") would match ordinary words


@dataclass(frozen=True, slots=True)
class Leak:
    where: str
    kind: str
    masked: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.masked}"


def mask(secret: str) -> str:
    return f"{secret[:4]}… ({len(secret)} chars)"


def scan_lines(lines: Iterable[str], source: str, secrets: Iterable[str] = ()) -> list[Leak]:
    """Every credential in `lines`, as `source:line`, with the secret itself masked."""
    known = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)
    leaks = []
    for number, line in enumerate(lines, 1):
        where = f"{source}:{number}"
        leaks += [Leak(where, "a secret the tests set", mask(s)) for s in known if s in line]
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(line):
                before = line[match.start() : match.start("secret")]
                leaks.append(Leak(where, kind, before + mask(match.group("secret"))))
    return leaks


def scan_files(paths: Iterable[Path], secrets: Iterable[str] = ()) -> list[Leak]:
    secrets = list(secrets)
    leaks = []
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as f:
            leaks += scan_lines(f, str(path), secrets)
    return leaks


def log_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.log") if p.is_file())
