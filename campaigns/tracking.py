"""Opens, clicks, unsubscribes, bounces and complaints: each updates its Message and becomes a customers.Event.

These entry points are public (the email's pixel, links and the ESP's webhooks), so they find the message by its
unguessable token (or the ESP's message id) with scopes disabled for that single lookup, then do everything else
inside the message's workspace scope.
"""

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass

from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Message, Suppression
from campaigns.services import suppression_add
from crm.models import Workspace
from customers.services import customer_email_unsubscribe

# Apple Mail Privacy Protection fetches every image from Apple's 17.0.0.0/8 network as soon as mail arrives;
# security scanners and link checkers announce themselves. Such opens are recorded but counted apart.
MACHINE_OPEN_NETWORKS = [ipaddress.ip_network("17.0.0.0/8")]
MACHINE_USER_AGENT_MARKERS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "bot",
    "crawler",
    "python-requests",
    "curl/",
    "microsoft office existence discovery",
    "symantec",
)
MACHINE_OPEN_WINDOW = dt.timedelta(seconds=3)


@dataclass(frozen=True, kw_only=True)
class TrackingResult:
    message: Message | None
    recorded: bool = False


def message_by_token(token: str) -> Message | None:
    with scopes_disabled():
        return Message.objects.select_related("workspace").filter(token=token).first()


def is_machine_open(*, user_agent: str, ip: str, sent_at: dt.datetime | None, now: dt.datetime) -> bool:
    agent = (user_agent or "").lower()
    if any(marker in agent for marker in MACHINE_USER_AGENT_MARKERS):
        return True
    if agent.strip() == "mozilla/5.0":  # Apple's privacy proxy sends this bare agent
        return True
    try:
        address = ipaddress.ip_address(ip)
        if any(address in network for network in MACHINE_OPEN_NETWORKS):
            return True
    except ValueError:
        pass
    return bool(sent_at and now - sent_at < MACHINE_OPEN_WINDOW)


def _record(
    workspace: Workspace, message: Message, type_: str, external_id: str, properties: dict, at: dt.datetime
) -> None:
    from customers.records import EventRecord
    from customers.services import events_bulk_record

    base = {"message_id": message.id}
    if message.campaign_id:
        base["campaign_id"] = message.campaign_id
    if message.flow_step_id:
        base["flow_step_id"] = message.flow_step_id
    events_bulk_record(
        workspace=workspace,
        records=[
            EventRecord(
                type=type_,
                occurred_at=at,
                customer_id=message.customer_id,
                external_id=external_id,
                properties=base | properties,
            )
        ],
    )


def message_open(*, token: str, user_agent: str = "", ip: str = "", now: dt.datetime | None = None) -> TrackingResult:
    now = now or timezone.now()
    message = message_by_token(token)
    if message is None:
        return TrackingResult(message=None)
    with scope(workspace=message.workspace):
        machine = is_machine_open(user_agent=user_agent, ip=ip, sent_at=message.sent_at, now=now)
        field = "machine_opened_at" if machine else "opened_at"
        first = Message.objects.filter(workspace=message.workspace, pk=message.pk, **{f"{field}__isnull": True}).update(
            **{field: now}
        )
        if first:
            _record(
                message.workspace,
                message,
                "email_opened",
                f"email_opened:{'machine:' if machine else ''}{message.id}",
                {"machine": machine},
                now,
            )
        return TrackingResult(message=message, recorded=bool(first))


def message_click(*, token: str, url: str, now: dt.datetime | None = None) -> TrackingResult:
    now = now or timezone.now()
    message = message_by_token(token)
    if message is None:
        return TrackingResult(message=None)
    with scope(workspace=message.workspace):
        Message.objects.filter(workspace=message.workspace, pk=message.pk, clicked_at__isnull=True).update(
            clicked_at=now
        )
        # A click proves a human open even when the pixel was blocked.
        Message.objects.filter(workspace=message.workspace, pk=message.pk, opened_at__isnull=True).update(opened_at=now)
        url_key = hashlib.sha1(url.encode()).hexdigest()[:12]  # noqa: S324 - a key, not security
        _record(
            message.workspace,
            message,
            "email_clicked",
            f"email_clicked:{message.id}:{url_key}",
            {"url": url[:500]},
            now,
        )
        return TrackingResult(message=message, recorded=True)


def message_unsubscribe(*, token: str, source: str = "one_click", now: dt.datetime | None = None) -> TrackingResult:
    """Unsubscribe the recipient of ``token``: suppression, consent withdrawn, an event. Idempotent."""
    now = now or timezone.now()
    message = message_by_token(token)
    if message is None:
        return TrackingResult(message=None)
    workspace = message.workspace
    with scope(workspace=workspace):
        first = Message.objects.filter(workspace=workspace, pk=message.pk, unsubscribed_at__isnull=True).update(
            unsubscribed_at=now
        )
        email = message.to_email or message.customer.email
        if email:
            suppression_add(workspace=workspace, email=email, reason=Suppression.Reason.UNSUBSCRIBED, message=message)
        customer_email_unsubscribe(
            workspace=workspace, customer_id=message.customer_id, source=f"email:{source}", at=now
        )
        if first:
            _record(
                workspace, message, "email_unsubscribed", f"email_unsubscribed:{message.id}", {"source": source}, now
            )
        return TrackingResult(message=message, recorded=bool(first))


def esp_event_apply(
    *, event_type: str, message_id: str = "", token: str = "", recipient: str = "", now: dt.datetime | None = None
) -> bool:
    """Apply one normalised ESP tracking event (anymail's ``event_type``) to its message. Unknown -> False."""
    now = now or timezone.now()
    message = message_by_token(token) if token else None
    if message is None and message_id:
        with scopes_disabled():
            message = Message.objects.select_related("workspace").filter(esp_message_id=message_id).first()
    if message is None:
        return False
    workspace = message.workspace
    with scope(workspace=workspace):
        email = recipient or message.to_email
        if event_type == "bounced":
            Message.objects.filter(workspace=workspace, pk=message.pk, bounced_at__isnull=True).update(bounced_at=now)
            suppression_add(workspace=workspace, email=email, reason=Suppression.Reason.BOUNCED, message=message)
            _record(workspace, message, "email_bounced", f"email_bounced:{message.id}", {}, now)
        elif event_type == "complained":
            Message.objects.filter(workspace=workspace, pk=message.pk, complained_at__isnull=True).update(
                complained_at=now
            )
            suppression_add(workspace=workspace, email=email, reason=Suppression.Reason.COMPLAINED, message=message)
            customer_email_unsubscribe(
                workspace=workspace, customer_id=message.customer_id, source="email:complaint", at=now
            )
            _record(workspace, message, "email_complained", f"email_complained:{message.id}", {}, now)
        elif event_type == "unsubscribed":
            message_unsubscribe(token=message.token, source="esp", now=now)
        elif event_type == "opened":
            message_open(token=message.token, now=now)
        elif event_type == "clicked":
            Message.objects.filter(workspace=workspace, pk=message.pk, clicked_at__isnull=True).update(clicked_at=now)
        else:
            return False
        return True
