"""How each event type looks on the customer timeline: an icon, a colour and a one-line summary.

Summaries are built from the event's own properties only, so a timeline page stays one indexed query. Types
the CRM does not know yet (another app may record new ones) still show, with a generic icon and their type name.
"""

from collections.abc import Callable
from dataclasses import dataclass

from customers.models import Event, EventType


@dataclass(frozen=True, kw_only=True)
class EventStyle:
    icon: str
    tone: str  # a Bootstrap colour name
    summary: Callable[[dict], str]


def _money(props: dict, key: str = "total") -> str:
    value = props.get(key)
    if value in (None, ""):
        return ""
    return f"{value} {props.get('currency', '')}".strip()


def _join(*parts: str) -> str:
    return " · ".join(part for part in parts if part)


def _order(verb: str) -> Callable[[dict], str]:
    def summary(props: dict) -> str:
        number = props.get("number") or props.get("order_id") or ""
        items = props.get("items")
        items_text = f"{items} item{'s' if items != 1 else ''}" if isinstance(items, int) and items else ""
        refunded = f"refunded {props['refunded']}" if props.get("refunded") else ""
        codes = ", ".join(props.get("discount_codes") or [])
        return _join(
            f"{verb} {('order ' + str(number)) if number else 'an order'}",
            _money(props),
            items_text,
            refunded,
            f"codes {codes}" if codes else "",
        )

    return summary


def _product(verb: str) -> Callable[[dict], str]:
    def summary(props: dict) -> str:
        title = props.get("title") or props.get("product_title") or props.get("sku") or "a product"
        quantity = props.get("quantity")
        return _join(f"{verb} {title}", f"× {quantity}" if quantity and quantity != 1 else "", _money(props, "price"))

    return summary


def _email(verb: str) -> Callable[[dict], str]:
    def summary(props: dict) -> str:
        subject = props.get("subject") or props.get("campaign") or props.get("campaign_name") or ""
        url = str(props.get("url") or "") if verb == "Clicked" else ""
        return _join(f"{verb} {('“' + subject + '”') if subject else 'an email'}", url)

    return summary


def _ticket(verb: str) -> Callable[[dict], str]:
    def summary(props: dict) -> str:
        subject = props.get("subject") or ""
        number = props.get("number") or props.get("ticket_id") or ""  # the ticket's own number, as reps know it
        return _join(
            f"{verb} ticket {('#' + str(number)) if number else ''}".strip(), f"“{subject}”" if subject else ""
        )

    return summary


def _segment(verb: str) -> Callable[[dict], str]:
    def summary(props: dict) -> str:
        return f"{verb} {props.get('segment') or props.get('segment_name') or 'a segment'}"

    return summary


def _consent(props: dict) -> str:
    channel = str(props.get("channel", "email")).upper() if props.get("channel") == "sms" else "Email"
    before = str(props.get("from", "?")).replace("_", " ")
    after = str(props.get("to", "?")).replace("_", " ")
    return _join(f"{channel} consent: {before} → {after}", f"via {props['source']}" if props.get("source") else "")


def _survey(props: dict) -> str:
    kind = str(props.get("kind") or props.get("survey") or "survey").upper()
    score = props.get("score")
    comment = props.get("comment") or ""
    return _join(
        f"Answered {kind}" + (f": {score}" if score is not None else ""), f"“{comment[:80]}”" if comment else ""
    )


def _note(props: dict) -> str:
    author = props.get("author") or "Someone"
    return f"{author}: {props.get('excerpt', '')}"


def _page(props: dict) -> str:
    return f"Viewed {props.get('title') or props.get('url') or props.get('path') or 'a page'}"


def _cart_abandoned(props: dict) -> str:
    items = props.get("items")
    return _join("Left a cart", _money(props, "value"), f"{items} items" if items else "")


def _checkout(props: dict) -> str:
    return _join("Started checkout", _money(props, "value") or _money(props))


def _merged(props: dict) -> str:
    name = props.get("duplicate_name") or props.get("duplicate_email") or f"#{props.get('duplicate_id', '?')}"
    return f"Merged duplicate {name} into this profile"


def _unmerged(props: dict) -> str:
    name = props.get("duplicate_name") or props.get("duplicate_email") or f"#{props.get('duplicate_id', '?')}"
    return _join(
        f"Undid the merge of {name}; it is a separate profile again", f"by {props['by']}" if props.get("by") else ""
    )


def _profile(props: dict) -> str:
    fields = ", ".join(str(f).replace("_", " ") for f in props.get("fields", []))
    return _join(f"Profile updated{(': ' + fields) if fields else ''}", f"by {props['by']}" if props.get("by") else "")


def _rfm(props: dict) -> str:
    return f"RFM group: {props.get('from') or 'none'} → {props.get('to') or 'none'}"


def _created(props: dict) -> str:
    return _join("Became a customer", f"via {props['source']}" if props.get("source") else "")


def _identified(props: dict) -> str:
    return "Identified on the storefront"


STYLES: dict[str, EventStyle] = {
    EventType.PAGE_VIEWED: EventStyle(icon="bi-eye", tone="secondary", summary=_page),
    EventType.PRODUCT_VIEWED: EventStyle(icon="bi-bag", tone="secondary", summary=_product("Viewed")),
    EventType.ADDED_TO_CART: EventStyle(icon="bi-cart-plus", tone="info", summary=_product("Added")),
    EventType.CHECKOUT_STARTED: EventStyle(icon="bi-credit-card", tone="info", summary=_checkout),
    EventType.CART_ABANDONED: EventStyle(icon="bi-cart-x", tone="warning", summary=_cart_abandoned),
    EventType.ORDER_PLACED: EventStyle(icon="bi-bag-check", tone="success", summary=_order("Placed")),
    EventType.ORDER_CANCELLED: EventStyle(icon="bi-x-octagon", tone="danger", summary=_order("Cancelled")),
    EventType.ORDER_REFUNDED: EventStyle(icon="bi-arrow-counterclockwise", tone="danger", summary=_order("Refund on")),
    EventType.CUSTOMER_CREATED: EventStyle(icon="bi-person-plus", tone="primary", summary=_created),
    EventType.IDENTIFIED: EventStyle(icon="bi-fingerprint", tone="primary", summary=_identified),
    EventType.CONSENT_CHANGED: EventStyle(icon="bi-shield-check", tone="primary", summary=_consent),
    EventType.EMAIL_SENT: EventStyle(icon="bi-envelope", tone="secondary", summary=_email("Was sent")),
    EventType.EMAIL_OPENED: EventStyle(icon="bi-envelope-open", tone="info", summary=_email("Opened")),
    EventType.EMAIL_CLICKED: EventStyle(icon="bi-cursor", tone="info", summary=_email("Clicked")),
    EventType.EMAIL_UNSUBSCRIBED: EventStyle(
        icon="bi-envelope-slash", tone="warning", summary=_email("Unsubscribed from")
    ),
    EventType.EMAIL_BOUNCED: EventStyle(icon="bi-envelope-exclamation", tone="danger", summary=_email("Bounced")),
    EventType.EMAIL_COMPLAINED: EventStyle(icon="bi-flag", tone="danger", summary=_email("Marked as spam")),
    EventType.TICKET_OPENED: EventStyle(icon="bi-life-preserver", tone="warning", summary=_ticket("Opened")),
    EventType.TICKET_REPLIED: EventStyle(icon="bi-chat-left-text", tone="secondary", summary=_ticket("Reply on")),
    EventType.TICKET_SOLVED: EventStyle(icon="bi-check2-circle", tone="success", summary=_ticket("Solved")),
    EventType.SURVEY_ANSWERED: EventStyle(icon="bi-star", tone="warning", summary=_survey),
    EventType.NOTE_ADDED: EventStyle(icon="bi-sticky", tone="warning", summary=_note),
    EventType.SEGMENT_ENTERED: EventStyle(icon="bi-box-arrow-in-right", tone="primary", summary=_segment("Entered")),
    EventType.SEGMENT_LEFT: EventStyle(icon="bi-box-arrow-left", tone="secondary", summary=_segment("Left")),
    EventType.RFM_GROUP_CHANGED: EventStyle(icon="bi-grid-3x3", tone="primary", summary=_rfm),
    EventType.CUSTOMERS_MERGED: EventStyle(icon="bi-intersect", tone="primary", summary=_merged),
    EventType.CUSTOMERS_UNMERGED: EventStyle(icon="bi-arrow-left-right", tone="secondary", summary=_unmerged),
    EventType.DATA_ERASED: EventStyle(icon="bi-eraser", tone="danger", summary=lambda props: "Personal data erased"),
    EventType.PROFILE_UPDATED: EventStyle(icon="bi-pencil-square", tone="secondary", summary=_profile),
    EventType.PRODUCT_BACK_IN_STOCK: EventStyle(icon="bi-box-seam", tone="success", summary=_product("Back in stock:")),
}
UNKNOWN = EventStyle(icon="bi-dot", tone="secondary", summary=lambda props: "")


@dataclass(frozen=True, kw_only=True)
class TimelineEntry:
    event: Event
    label: str
    icon: str
    tone: str
    summary: str


def timeline_entry(event: Event) -> TimelineEntry:
    style = STYLES.get(event.type, UNKNOWN)
    label = EventType(event.type).label if event.type in EventType.values else event.type.replace("_", " ").capitalize()
    try:
        summary = style.summary(event.properties or {}) or label
    except (TypeError, ValueError, AttributeError, KeyError):
        # Properties come from outside (tracking, webhooks): a malformed one must not break the page.
        summary = label
    return TimelineEntry(event=event, label=label, icon=style.icon, tone=style.tone, summary=summary)
