"""Formatting for KPI cards: values by kind, deltas, and sparklines drawn as inline SVG on the server."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "AUD": "A$", "CAD": "C$"}


def money(value: float, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1_000_000:
        return f"{sign}{symbol}{value / 1_000_000:,.2f}M"
    if value >= 10_000:
        return f"{sign}{symbol}{value:,.0f}"
    return f"{sign}{symbol}{value:,.2f}"


@register.simple_tag
def kpi_value(value, kind: str, currency: str = "") -> str:
    if value is None:
        return "—"
    if kind == "money":
        return money(value, currency)
    if kind == "percent":
        return f"{value * 100:.1f}%"
    if kind == "score":
        return f"{value:+.0f}"
    return f"{value:,.0f}"


@register.simple_tag
def kpi_delta(kpi) -> str:
    delta = kpi.delta
    if delta is None:
        return mark_safe('<span class="kpi-delta text-muted small">no comparison</span>')
    good = kpi.is_good
    css = "text-muted" if good is None else ("up" if good else "down")
    arrow = "bi-arrow-right" if abs(delta) < 1e-12 else ("bi-arrow-up-right" if delta > 0 else "bi-arrow-down-right")
    if kpi.kind == "percent":
        text = f"{delta * 100:+.1f} pts"
    elif kpi.kind == "score":
        text = f"{delta:+.0f}"
    else:
        text = f"{delta * 100:+.1f}%"
    return format_html('<span class="kpi-delta small {}"><i class="bi {}"></i> {}</span>', css, arrow, text)


@register.simple_tag
def sparkline(values, width: int = 120, height: int = 28) -> str:
    points = [v for v in values if v is not None]
    if len(points) < 2:
        return ""
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    coords = []
    for index, value in enumerate(values):
        if value is None:
            continue
        y = height - 2 - (value - low) / span * (height - 4)
        coords.append(f"{index * step:.1f},{y:.1f}")
    return format_html(
        '<svg class="sparkline" viewBox="0 0 {} {}" width="100%" height="{}" preserveAspectRatio="none" '
        'aria-hidden="true"><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/></svg>',
        width,
        height,
        height,
        " ".join(coords),
    )
