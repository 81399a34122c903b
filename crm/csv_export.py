"""CSV cells that spreadsheets will not run as formulas (OWASP "CSV injection")."""

import numbers

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_safe(value: object) -> object:
    """Text starting with = + - @ or a control character gets a leading apostrophe, so Excel or LibreOffice show
    it instead of evaluating it. Numbers stay numbers (a negative amount is not a formula)."""
    if value is None:
        return ""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):  # Decimal and numpy scalars too
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text
