"""Upstream credentials are encrypted at rest (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

The key comes from `TOROUTER_SECRET_KEY` (any string; it is stretched with SHA-256), or else from
a key file made on first use (`~/.config/torouter/secret.key`, or `$TOROUTER_SECRET_KEY_FILE`)
with a warning: replicas on other machines need the same key, so set the variable there.
Values written before encryption existed are plaintext; they are read as they are and sealed
at the next start-up.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

log = logging.getLogger("torouter.secrets")
PREFIX = "fernet:"
ENV_KEY = "TOROUTER_SECRET_KEY"
ENV_FILE = "TOROUTER_SECRET_KEY_FILE"


class SealError(Exception):
    """A sealed value that this key cannot open: the secret key changed or is not the replicas' key."""


class Sealer:
    def __init__(self, secret: str) -> None:
        digest = hashlib.sha256(secret.encode("utf-8")).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plain: str) -> str:
        if not plain or plain.startswith(PREFIX):
            return plain
        return PREFIX + self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written before credentials were encrypted; sealed at the next start-up
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise SealError(
                f"a stored credential cannot be decrypted with this {ENV_KEY}; "
                "set the key it was written with, or set the credential again"
            ) from None

    def same(self, stored: str, plain: str) -> bool:
        """Whether a stored credential holds `plain` (False when it cannot be opened at all)."""
        try:
            return self.open(stored) == plain
        except SealError:
            return False


def key_file() -> Path:
    if os.environ.get(ENV_FILE):
        return Path(os.environ[ENV_FILE])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "torouter" / "secret.key"


def _secret() -> str:
    value = os.environ.get(ENV_KEY)
    if value:
        return value
    path = key_file()
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it a moment ago
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    log.warning(
        "%s is not set: generated a secret key in %s to encrypt upstream credentials. Back it up, "
        "and give every replica the same key through %s.",
        ENV_KEY,
        path,
        ENV_KEY,
    )
    return secret


_current: Sealer | None = None


def sealer() -> Sealer:
    """This process's sealer, made from the environment on first use."""
    global _current
    if _current is None:
        _current = Sealer(_secret())
    return _current


def reset() -> None:
    """Forget the sealer, so the next use reads the environment again (tests)."""
    global _current
    _current = None
