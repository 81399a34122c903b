"""Normalising contact data the same way on every ingestion path."""

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

EMAIL_RE = re.compile(r"\s+")


class InvalidValue(ValueError):
    """A value that cannot be normalised; the message says why, in words a merchant understands."""


def normalize_email(value: str | None) -> str:
    email = EMAIL_RE.sub("", value or "").lower()
    if not email:
        return ""
    try:
        validate_email(email)
    except ValidationError as error:
        raise InvalidValue(f"{value!r} is not a valid email address") from error
    return email


def normalize_phone(value: str | None, *, default_region: str = "US") -> str:
    """Return the number in E.164 (e.g. +14155550100), or raise InvalidValue."""
    raw = (value or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, (default_region or "US").upper())
    except phonenumbers.NumberParseException as error:
        raise InvalidValue(f"{raw!r} is not a phone number") from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue(f"{raw!r} is not a valid phone number for {default_region or 'its country'}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_country(value: str | None) -> str:
    code = (value or "").strip().upper()
    if code and not re.fullmatch(r"[A-Z]{2}", code):
        raise InvalidValue(f"{value!r} is not a two-letter country code (ISO 3166-1 alpha-2)")
    return code
