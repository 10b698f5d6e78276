"""SecretStore on SQLite, every value encrypted with Fernet (AES-128-CBC + HMAC)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from shared.adapters.embedded.sqlite_db import SqliteDatabase

KEY_FILE = "secret.key"


class SecretKeyMismatch(Exception):
    """A stored secret does not decrypt with the configured key."""


def load_or_create_key(data_dir: Path, configured: str | None) -> bytes:
    """The configured Fernet key, else ``<data_dir>/secret.key`` (created 0600 if absent)."""
    if configured:
        key = configured.strip().encode()
        Fernet(key)  # refuses a malformed key now rather than on first use
        return key
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as file:
        key = Fernet.generate_key()
        file.write(key)
    return key


class EncryptedSecretStore:
    """Secrets in the ``secrets`` table; only ciphertext touches the disk."""

    def __init__(self, db: SqliteDatabase, key: bytes) -> None:
        self._db = db
        self._fernet = Fernet(key)
        with db.transaction(immediate=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)"
            )

    async def set(self, name: str, value: str) -> None:
        token = self._fernet.encrypt(value.encode())
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO secrets (name, value) VALUES (?, ?)", (name, token)
            )

    async def get(self, name: str) -> str | None:
        row = self._db.connection.execute(
            "SELECT value FROM secrets WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        try:
            return self._fernet.decrypt(row[0]).decode()
        except InvalidToken:
            raise SecretKeyMismatch(f"secret {name!r} does not decrypt with this key") from None

    async def delete(self, name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM secrets WHERE name = ?", (name,))
