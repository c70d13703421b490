"""Linkage keys: generation, the key file, and the sub-keys derived per attribute group.

The linkage key stays with the agencies. The service only ever sees its id, which is derived
from the secret so that a key file cannot carry a mismatched id.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from linkage.errors import KeyFileError

KEY_FILE_FORMAT = "cci-linkage-key/1"
SECRET_BYTES = 32
NHS_ASSOCIATED_DATA = b"cci/nhs_number/v1"

#: Attribute groups. Columns in one group share a sub-key so that cross-column comparisons
#: (given/family name swap, day/month transposition) still agree.
GROUPS: tuple[str, ...] = ("nhs_number", "upn", "la_child_id", "name", "dob", "postcode")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id_for(secret: bytes) -> str:
    """A short public id for a secret: a keyed digest, so it reveals nothing about the key."""
    return "k" + hmac.digest(secret, b"cci/key-id", "sha256").hex()[:15]


def _hkdf(secret: bytes, info: str, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info.encode()).derive(
        secret
    )


@dataclass(frozen=True)
class LinkageKey:
    """A linkage key and its derived sub-keys (HKDF-SHA256, one per attribute group)."""

    secret: bytes = field(repr=False)
    created_at: str = ""

    @property
    def key_id(self) -> str:
        return key_id_for(self.secret)

    def subkey(self, group: str) -> bytes:
        """The HMAC sub-key of one attribute group."""
        if group not in GROUPS:
            raise ValueError(f"unknown attribute group {group!r}")
        return _hkdf(self.secret, f"cci/v1/hmac/{group}", 32)

    def nhs_cipher(self) -> AESSIV:
        """Deterministic authenticated encryption for NHS numbers (AES-SIV, 512-bit key)."""
        return AESSIV(_hkdf(self.secret, "cci/v1/aes-siv/nhs_number", 64))

    def nhs_encryptor(self) -> Callable[[str], str]:
        """A function encrypting NHS numbers; derive the cipher once, not per number."""
        cipher = self.nhs_cipher()

        def encrypt(nhs_number: str) -> str:
            return _b64(cipher.encrypt(nhs_number.encode("ascii"), [NHS_ASSOCIATED_DATA]))

        return encrypt

    def reveal_nhs_number(self, ciphertext: str) -> str:
        """Decrypt an NHS number ciphertext produced under this key (raises on tampering)."""
        from cryptography.exceptions import InvalidTag

        try:
            plain = self.nhs_cipher().decrypt(_unb64(ciphertext), [NHS_ASSOCIATED_DATA])
        except (InvalidTag, ValueError) as exc:
            raise KeyFileError(
                "ciphertext was not produced under this key, or was altered"
            ) from exc
        return plain.decode("ascii")


def generate_key() -> LinkageKey:
    return LinkageKey(
        secret=secrets.token_bytes(SECRET_BYTES),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write_key_file(key: LinkageKey, path: Path) -> None:
    """Write the key to a new file readable by its owner only; never overwrite."""
    payload = {
        "format": KEY_FILE_FORMAT,
        "key_id": key.key_id,
        "created_at": key.created_at,
        "secret": _b64(key.secret),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key file") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")


def read_key_file(path: Path) -> LinkageKey:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("format") != KEY_FILE_FORMAT:
            raise KeyFileError(f"{path} is not a CCI linkage key file")
        key = LinkageKey(secret=_unb64(payload["secret"]), created_at=payload.get("created_at", ""))
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} not found") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a readable CCI linkage key file") from exc
    if len(key.secret) != SECRET_BYTES or payload.get("key_id") != key.key_id:
        raise KeyFileError(f"{path} is corrupt: its key id does not match its secret")
    return key
