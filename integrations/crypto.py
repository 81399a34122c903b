"""Secrets at rest (store credentials, webhook secrets) are encrypted with Fernet keys from ``settings.FERNET_KEYS``.

The first key encrypts; every key decrypts, so a key is rotated by prepending a new one and later re-encrypting
(``secrets_reencrypt``) before the old key is dropped.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from crm.exceptions import DomainError


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise DomainError("FERNET_KEYS is empty: store credentials cannot be encrypted.")
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FERNET_KEYS))


def encrypt_text(value: str) -> str:
    if not value:
        return ""
    return fernet().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise DomainError(
            "Stored credentials cannot be decrypted with the configured FERNET_KEYS (was a key removed?)."
        ) from error


def encrypt_json(value: dict) -> str:
    return encrypt_text(json.dumps(value, sort_keys=True))


def decrypt_json(token: str) -> dict:
    text = decrypt_text(token)
    return json.loads(text) if text else {}


def rotate_token(token: str) -> str:
    """Re-encrypt ``token`` with the first (newest) key."""
    return fernet().rotate(token.encode()).decode() if token else ""
