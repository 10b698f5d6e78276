"""SecretStore contract, plus what only the embedded store promises (encryption, key file)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from shared.adapters.embedded.secrets import (
    EncryptedSecretStore,
    SecretKeyMismatch,
    load_or_create_key,
)
from shared.adapters.embedded.sqlite_db import SqliteDatabase
from shared.ports import SecretStore

PLAINTEXT = "s3cr3t-value-that-must-not-hit-the-disk"


async def test_a_secret_reads_back(secrets: SecretStore) -> None:
    await secrets.set("tn-a--smtp-password", PLAINTEXT)
    assert await secrets.get("tn-a--smtp-password") == PLAINTEXT


async def test_a_missing_secret_reads_as_none(secrets: SecretStore) -> None:
    assert await secrets.get("nope") is None


async def test_setting_again_overwrites(secrets: SecretStore) -> None:
    await secrets.set("name", "one")
    await secrets.set("name", "two")
    assert await secrets.get("name") == "two"


async def test_a_deleted_secret_is_gone_and_deleting_twice_is_fine(secrets: SecretStore) -> None:
    await secrets.set("name", "one")
    await secrets.delete("name")
    await secrets.delete("name")
    assert await secrets.get("name") is None


async def test_values_are_encrypted_at_rest(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "ocm.sqlite3")
    key = Fernet.generate_key()
    await EncryptedSecretStore(db, key).set("name", PLAINTEXT)
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    db.close()
    raw += b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert b"name" in raw
    assert PLAINTEXT.encode() not in raw

    reopened = SqliteDatabase(tmp_path / "ocm.sqlite3")
    assert await EncryptedSecretStore(reopened, key).get("name") == PLAINTEXT
    with pytest.raises(SecretKeyMismatch) as refused:
        await EncryptedSecretStore(reopened, Fernet.generate_key()).get("name")
    assert PLAINTEXT not in str(refused.value)
    reopened.close()


def test_a_key_is_created_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = load_or_create_key(data_dir, None)
    Fernet(key)
    assert stat.S_IMODE((data_dir / "secret.key").stat().st_mode) == 0o600
    assert load_or_create_key(data_dir, None) == key


def test_a_configured_key_wins_and_a_malformed_one_is_refused(tmp_path: Path) -> None:
    configured = Fernet.generate_key().decode()
    assert load_or_create_key(tmp_path, configured) == configured.encode()
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(ValueError):
        load_or_create_key(tmp_path, "not-a-fernet-key")
