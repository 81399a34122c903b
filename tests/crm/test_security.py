import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-1234567890",
    "ALLOWED_HOSTS": "crm.example.com",
    "DATABASE_URL": "sqlite:////tmp/crm-deploy-check.sqlite3",
    "FERNET_KEYS": "c2VjdXJlLWZlcm5ldC1rZXktZm9yLXRoZS1jaGVjay0=",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ENV", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_passes_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [({"DEBUG": "1"}, "DEBUG must be off"), ({"SECRET_KEY": ""}, "SECRET_KEY must be set")],
)
def test_production_refuses_to_start_misconfigured(override, message):
    result = manage("check", env={**PRODUCTION_ENV, **override})

    assert result.returncode != 0
    assert message in result.stderr


@override_settings(CONTENT_SECURITY_POLICY_ENABLED=True)
def test_pages_carry_security_headers(db):
    response = Client().get("/accounts/login/")

    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_passwords_are_hashed_with_argon2():
    from crm import settings as project_settings  # the tests themselves swap in a fast hasher

    assert project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
