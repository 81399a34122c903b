"""The Message protocol: claim, re-check, render, hand to the email backend, record.

1. A batch of due rows is claimed with one conditional UPDATE (``status = queued`` -> ``sending`` with a fresh
   claim token); only rows this worker flipped are processed, so a duplicated or retried task sends nothing twice.
2. Consent, suppression, support hold-outs, flow goals, quiet hours and the frequency cap are checked again NOW,
   for the whole batch in a handful of queries. A capped or quiet-hours message goes back to ``queued`` with a
   later ``send_after`` (deferred, never dropped).
3. Each message is rendered from the template compiled once per batch and sent; its row is marked ``sent`` right
   after the backend accepted it (one small UPDATE, so a crash loses at most the message in flight).
4. Rows left in ``sending`` by a killed worker are put back in the queue by ``messages_requeue_stale`` once their
   lease is over; the minute tick does that and re-dispatches.
"""

import datetime as dt
import hashlib
import html
import logging
import secrets
import smtplib
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection as db_connection
from django.db.models import Max, Sum
from django.utils import timezone

from campaigns.marks import SentMarks
from campaigns.models import (
    Campaign,
    EmailTemplate,
    FlowRun,
    FlowStep,
    Message,
    PromoCode,
    SendingPolicy,
    Suppression,
)
from campaigns.rendering import CompiledEmail, blocks_to_html, compile_email, render_email, site_url
from crm.models import Workspace
from customers.models import Cart, CartStatus, ConsentStatus, Customer, OrderLine, Product

logger = logging.getLogger(__name__)

SEND_LEASE = dt.timedelta(minutes=10)
PROMO_CODE_WAIT = dt.timedelta(minutes=1)
TRANSIENT_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError)
CUSTOMER_FIELDS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "city",
    "loyalty_points",
    "top_categories",
    "rfm_group",
    "orders_count",
    "email_consent",
    "open_tickets_count",
    "last_csat_score",
    "last_csat_at",
)


@dataclass(frozen=True, kw_only=True)
class SendResult:
    sent: int = 0
    deferred: int = 0
    suppressed: int = 0
    held_out: int = 0
    cancelled: int = 0
    failed: int = 0

    def __add__(self, other: "SendResult") -> "SendResult":
        return SendResult(**{k: getattr(self, k) + getattr(other, k) for k in self.__dataclass_fields__})


def sending_policy(*, workspace: Workspace) -> SendingPolicy:
    policy, _ = SendingPolicy.objects.get_or_create(workspace=workspace)
    return policy


_COMPILED: dict[tuple, CompiledEmail] = {}


def template_body_html(template: EmailTemplate) -> str:
    return blocks_to_html(template.blocks) if template.format == EmailTemplate.Format.BLOCKS else template.html


def compiled_template(
    *,
    workspace: Workspace,
    template: EmailTemplate,
    subject: str | None = None,
    track: bool = True,
    postal_address: str = "",
) -> CompiledEmail:
    """Compile once per template version and subject; the cache is per process and keyed by updated_at."""
    key = (template.pk, template.updated_at, subject, track, workspace.name, postal_address)
    compiled = _COMPILED.get(key) if template.pk and template.updated_at else None
    if compiled is None:
        compiled = compile_email(
            subject=subject or template.subject,
            preheader=template.preheader,
            body_html=template_body_html(template),
            shop_name=workspace.name,
            postal_address=postal_address,
            track=track,
        )
        if template.pk and template.updated_at:
            if len(_COMPILED) > 256:
                _COMPILED.clear()
            _COMPILED[key] = compiled
    return compiled


def unique_promo_code(prefix: str, token: str) -> str:
    return f"{prefix}-{hashlib.sha256(f'{settings.SECRET_KEY}:{token}'.encode()).hexdigest()[:8].upper()}"


def _money(value: object, currency: str) -> str:
    try:
        return f"{Decimal(str(value)):.2f} {currency}"
    except Exception:  # noqa: BLE001 - a malformed price in a cart line must not stop a send
        return ""


def cart_lines_for(*, workspace: Workspace, customer_ids: list[int], cart_ids: dict[int, int]) -> dict[int, dict]:
    """The cart a cart flow is about (by id from the run), else the customer's latest open or abandoned cart."""
    carts: dict[int, Cart] = {}
    wanted = [cid for cid in cart_ids.values() if cid]
    for cart in Cart.objects.filter(workspace=workspace, id__in=wanted):
        if cart.customer_id:
            carts[cart.customer_id] = cart
    missing = [c for c in customer_ids if c not in carts]
    if missing:
        for cart in Cart.objects.filter(
            workspace=workspace, customer_id__in=missing, status__in=[CartStatus.OPEN, CartStatus.ABANDONED]
        ).order_by("customer_id", "-last_activity_at"):
            if cart.customer_id is not None:
                carts.setdefault(cart.customer_id, cart)
    out = {}
    for customer_id, cart in carts.items():
        rows, text = [], []
        for line in cart.lines or []:
            title = str(line.get("title") or line.get("sku") or "Item")
            quantity = line.get("quantity") or 1
            price = _money(line.get("price", ""), cart.currency)
            rows.append(
                f'<tr><td style="padding:6px 0;border-bottom:1px solid #e5e7eb">{html.escape(title)} × {int(quantity)}'
                f'</td><td style="padding:6px 0;border-bottom:1px solid #e5e7eb;text-align:right">{html.escape(price)}'
                "</td></tr>"
            )
            text.append(f"- {title} x {quantity}  {price}")
        link = ""
        if cart.checkout_url:
            link = (
                f'<p style="text-align:center"><a href="{html.escape(cart.checkout_url)}" style="display:inline-block;'
                "background-color:#2563eb;color:#ffffff;padding:12px 24px;border-radius:6px;text-decoration:none;"
                'font-weight:bold">Return to your cart</a></p>'
            )
            text.append(f"Return to your cart: {cart.checkout_url}")
        out[customer_id] = {
            "html": '<table width="100%" style="width:100%;border-collapse:collapse;margin:16px 0;font-size:14px">'
            + "".join(rows)
            + "</table>"
            + link,
            "text": "\n".join(text),
        }
    return out


def recommendations_for(*, workspace: Workspace, customer_ids: list[int], limit: int = 3) -> dict[int, list[Product]]:
    """ "Customers who bought this also bought": products co-purchased with the customer's own, most often first,
    excluding what they already bought; padded with the workspace's bestsellers."""
    owned: dict[int, set[int]] = defaultdict(set)
    for customer_id, product_id in OrderLine.objects.filter(
        workspace=workspace, order__customer_id__in=customer_ids, product__isnull=False
    ).values_list("order__customer_id", "product_id"):
        owned[customer_id].add(product_id)
    all_owned = set().union(*owned.values()) if owned else set()
    pairs: dict[int, Counter] = defaultdict(Counter)
    if all_owned:
        since = timezone.now() - dt.timedelta(days=365)
        orders: dict[int, set[int]] = defaultdict(set)
        order_ids = OrderLine.objects.filter(
            workspace=workspace, product_id__in=all_owned, order__placed_at__gte=since
        ).values("order_id")
        for order_id, product_id in OrderLine.objects.filter(
            workspace=workspace, order_id__in=order_ids, product__isnull=False
        ).values_list("order_id", "product_id")[:50000]:
            orders[order_id].add(product_id)
        for products in orders.values():
            for a in products & all_owned:
                for b in products:
                    if b != a:
                        pairs[a][b] += 1
    bestsellers = list(
        Product.objects.filter(workspace=workspace, is_in_stock=True)
        .annotate(sold=Sum("order_lines__quantity"))
        .order_by("-sold", "title")[: limit * 3]
    )
    wanted_ids = {b for counter in pairs.values() for b in counter}
    candidates = {p.pk: p for p in Product.objects.filter(workspace=workspace, id__in=wanted_ids, is_in_stock=True)}
    out = {}
    for customer_id in customer_ids:
        scores: Counter = Counter()
        for a in owned.get(customer_id, ()):
            scores.update(pairs.get(a, {}))
        chosen = [candidates[p] for p, _ in scores.most_common() if p in candidates and p not in owned[customer_id]]
        for product in bestsellers:
            if len(chosen) >= limit:
                break
            if product not in chosen and product.pk not in owned.get(customer_id, ()):
                chosen.append(product)
        out[customer_id] = chosen[:limit]
    return out


def products_html(products: list[Product], currency: str, heading: str = "You might also like") -> tuple[str, str]:
    if not products:
        return "", ""
    cells, text = [], []
    for product in products:
        image = (
            f'<img src="{html.escape(product.image_url)}" alt="" width="160" style="max-width:100%;border:0">'
            if product.image_url
            else ""
        )
        title = html.escape(product.title)
        if product.url:
            title = f'<a href="{html.escape(product.url)}" style="color:#1f2937">{title}</a>'
        width = 100 // len(products)
        price = html.escape(_money(product.price, currency))
        cells.append(
            f'<td style="text-align:center;padding:8px;vertical-align:top;font-size:14px" width="{width}%">'
            f'{image}<div>{title}</div><div style="color:#6b7280">{price}</div></td>'
        )
        text.append(
            f"- {product.title} ({_money(product.price, currency)})" + (f" {product.url}" if product.url else "")
        )
    html_block = (
        f'<p style="font-weight:bold;margin:16px 0 4px 0">{html.escape(heading)}</p>'
        '<table width="100%" style="width:100%;border-collapse:collapse"><tr>' + "".join(cells) + "</tr></table>"
    )
    return html_block, f"{heading}:\n" + "\n".join(text)


def merge_context(*, workspace: Workspace, customer: dict, template: EmailTemplate, token: str) -> dict:
    top = customer.get("top_categories") or []
    first, last = customer.get("first_name") or "", customer.get("last_name") or ""
    promo = template.promo_code
    if template.unique_promo_prefix:
        promo = unique_promo_code(template.unique_promo_prefix, token)
    return {
        "first_name": first,
        "last_name": last,
        "full_name": f"{first} {last}".strip(),
        "email": customer.get("email", ""),
        "city": customer.get("city", ""),
        "loyalty_points": customer.get("loyalty_points", 0),
        "top_category": top[0] if top else "",
        "rfm_group": (customer.get("rfm_group") or "").replace("_", " "),
        "orders_count": customer.get("orders_count", 0),
        "promo_code": promo,
        "shop_name": workspace.name,
        "_token": token,
        "_site_url": site_url(),
    }


def add_rich_fields(
    *,
    workspace: Workspace,
    compiled: CompiledEmail,
    contexts: dict[int, dict],
    cart_ids: dict[int, int] | None = None,
    customer_ids: dict[int, int] | None = None,
    product_ids: dict[int, int] | None = None,
) -> None:
    """Cart lines and recommendations cost queries, so they are built per batch and only when a template uses them.

    ``contexts`` are keyed by customer id, or by message id with ``customer_ids`` mapping each key to its customer;
    ``cart_ids`` maps a customer to the cart its flow is about."""
    owners = customer_ids or {key: key for key in contexts}
    if "cart_lines" in compiled.fields_used:
        carts = cart_lines_for(workspace=workspace, customer_ids=list(set(owners.values())), cart_ids=cart_ids or {})
        for key, context in contexts.items():
            cart = carts.get(owners[key], {"html": "", "text": ""})
            context["cart_lines_html"], context["cart_lines_text"] = cart["html"], cart["text"]
    if "product" in compiled.fields_used:
        wanted = product_ids or {}
        products = Product.objects.filter(workspace=workspace, id__in=set(wanted.values())).in_bulk()
        for key, context in contexts.items():
            product = products.get(wanted.get(key, 0))
            context["product_html"], context["product_text"] = products_html(
                [product] if product else [], workspace.currency, heading="Back in stock"
            )
    if "recommendations" in compiled.fields_used:
        recommendations = recommendations_for(workspace=workspace, customer_ids=list(set(owners.values())))
        for key, context in contexts.items():
            context["recommendations_html"], context["recommendations_text"] = products_html(
                recommendations.get(owners[key], []), workspace.currency
            )


def build_email(*, rendered, to: str, token: str, from_email: str, connection=None) -> EmailMultiAlternatives:
    unsubscribe = f"{site_url()}/e/u/{token}/"
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=from_email,
        to=[to],
        connection=connection,
        headers={
            # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" to the https URL, no cookies, no login.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-CRM-Message": token,
        },
    )
    message.attach_alternative(rendered.html, "text/html")
    message.metadata = {"crm_token": token}  # type: ignore[attr-defined]  # anymail ESPs echo it back in webhooks
    return message


# --- the send loop -------------------------------------------------------------------------------------------


def in_quiet_hours(*, policy: SendingPolicy, workspace: Workspace, now: dt.datetime) -> dt.datetime | None:
    """If ``now`` is inside the workspace's quiet hours, the aware datetime they end; else None."""
    start, end = policy.quiet_hours_start, policy.quiet_hours_end
    if start is None or end is None or start == end:
        return None
    local = timezone.localtime(now, workspace.tzinfo)
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_day = local.date() if t < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(end_day, end, tzinfo=workspace.tzinfo)


def messages_requeue_stale(
    *, workspace: Workspace, older_than: dt.timedelta = SEND_LEASE, now: dt.datetime | None = None
) -> int:
    """Rows a killed worker left in ``sending`` go back to the queue once their lease has run out."""
    now = now or timezone.now()
    return Message.objects.filter(
        workspace=workspace, status=Message.Status.SENDING, claimed_at__lte=now - older_than
    ).update(status=Message.Status.QUEUED, claim_token="")


def due_messages(*, workspace: Workspace, now: dt.datetime, campaign_id: int | None = None):
    """Queued rows whose time has come, except those of campaigns not sending (paused). Written as NOT IN over
    the small campaigns table, not as an OR over a join, so PostgreSQL walks the (workspace, status, send_after)
    index in order and stops at the batch size instead of sorting every queued row for every batch."""
    not_sending = Campaign.objects.filter(workspace=workspace).exclude(status=Campaign.Status.SENDING).values("id")
    queryset = Message.objects.filter(workspace=workspace, status=Message.Status.QUEUED, send_after__lte=now).exclude(
        campaign_id__in=not_sending
    )
    if campaign_id is not None:
        queryset = queryset.filter(campaign_id=campaign_id)
    return queryset


def messages_send_due(
    *,
    workspace: Workspace,
    campaign_id: int | None = None,
    now: dt.datetime | None = None,
    batch_size: int = 1000,
    max_batches: int | None = None,
    connection=None,
) -> SendResult:
    """Send every due message of the workspace (or of one campaign), batch by batch, until none is left."""
    connection = connection or get_connection()
    with _asynchronous_commits():
        return _send_loop(
            workspace=workspace,
            campaign_id=campaign_id,
            now=now,
            batch_size=batch_size,
            max_batches=max_batches,
            connection=connection,
        )


def _send_loop(
    *,
    workspace: Workspace,
    campaign_id: int | None,
    now: dt.datetime | None,
    batch_size: int,
    max_batches: int | None,
    connection,
) -> SendResult:
    total = SendResult()
    batches = 0
    opened = False
    try:
        while max_batches is None or batches < max_batches:
            clock = now or timezone.now()
            token = secrets.token_hex(8)
            claimed = messages_claim(
                workspace=workspace, now=clock, claim_token=token, campaign_id=campaign_id, limit=batch_size
            )
            batches += 1
            if not claimed:
                break
            if not opened:
                connection.open()
                opened = True
            total += _send_claimed(
                workspace=workspace, claimed=claimed, claim_token=token, now=clock, connection=connection
            )
    finally:
        if opened:
            connection.close()
    for campaign in Campaign.objects.filter(workspace=workspace, status=Campaign.Status.SENDING).only("id"):
        campaign_finish_if_done(workspace=workspace, campaign_id=campaign.id, now=now)
    return total


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A Message row as the claim returned it: only what sending needs, no model instance."""

    id: int
    customer_id: int
    campaign_id: int | None
    flow_step_id: int | None
    flow_run_id: int | None
    variant: str
    token: str


def messages_claim(
    *, workspace: Workspace, now: dt.datetime, claim_token: str, limit: int, campaign_id: int | None = None
) -> list[ClaimedMessage]:
    """Claim up to ``limit`` due rows in one statement: ``WITH due AS MATERIALIZED (the first due ids) UPDATE ...
    SET status = 'sending' WHERE id IN due AND status = 'queued' RETURNING ...``. Materialised, because as a plain
    subquery PostgreSQL may run it again for each row and claim more than the limit. The status condition is
    checked again on each row as it is updated, so a row another worker claimed first is skipped, never sent
    twice. On PostgreSQL the inner SELECT also skips rows locked by a concurrent claim (``FOR UPDATE SKIP
    LOCKED``), so parallel workers take different batches instead of queueing behind each other."""
    due = due_messages(workspace=workspace, now=now, campaign_id=campaign_id).order_by("send_after").values("id")
    due_sql, due_params = due[:limit].query.sql_with_params()
    if db_connection.features.has_select_for_update_skip_locked:
        due_sql += " FOR UPDATE SKIP LOCKED"  # the ORM refuses to compile FOR UPDATE outside a transaction
    columns = ["id", *(f"{name}_id" if name in CLAIMED_FOREIGN_KEYS else name for name in CLAIMED_FIELDS)]
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"WITH due AS MATERIALIZED ({due_sql}) "
            f"UPDATE {Message._meta.db_table} SET status = %s, claimed_at = %s, claim_token = %s "
            f"WHERE id IN (SELECT id FROM due) AND status = %s RETURNING {', '.join(columns)}",
            [*due_params, Message.Status.SENDING, now, claim_token, Message.Status.QUEUED],
        )
        rows = cursor.fetchall()
    return sorted((ClaimedMessage(*row) for row in rows), key=lambda m: m.id)


CLAIMED_FIELDS = ("customer", "campaign", "flow_step", "flow_run", "variant", "token")  # ClaimedMessage's order
CLAIMED_FOREIGN_KEYS = frozenset({"customer", "campaign", "flow_step", "flow_run"})


def campaign_finish_if_done(*, workspace: Workspace, campaign_id: int, now: dt.datetime | None = None) -> bool:
    pending = Message.objects.filter(
        workspace=workspace,
        campaign_id=campaign_id,
        status__in=[Message.Status.QUEUED, Message.Status.SENDING, Message.Status.WAITING_WINNER],
    ).exists()
    if pending:
        return False
    return bool(
        Campaign.objects.filter(workspace=workspace, id=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.SENT, finished_at=now or timezone.now()
        )
    )


@dataclass(frozen=True)
class _Origins:
    """The campaigns, flow steps (with flow and template) and flow runs a batch of claimed rows refers to."""

    campaigns: dict[int, Campaign]
    steps: dict[int, FlowStep]
    runs: dict[int, tuple[str, dict]]

    @classmethod
    def load(cls, *, workspace: Workspace, claimed: list[ClaimedMessage]) -> "_Origins":
        campaign_ids = {m.campaign_id for m in claimed if m.campaign_id}
        step_ids = {m.flow_step_id for m in claimed if m.flow_step_id}
        run_ids = {m.flow_run_id for m in claimed if m.flow_run_id}
        return cls(
            campaigns={
                c.id: c
                for c in Campaign.objects.filter(workspace=workspace, id__in=campaign_ids).select_related("template")
            }
            if campaign_ids
            else {},
            steps={
                s.id: s
                for s in FlowStep.objects.filter(workspace=workspace, id__in=step_ids).select_related(
                    "template", "flow"
                )
            }
            if step_ids
            else {},
            runs={
                run_id: (status, context or {})
                for run_id, status, context in FlowRun.objects.filter(workspace=workspace, id__in=run_ids).values_list(
                    "id", "status", "context"
                )
            }
            if run_ids
            else {},
        )

    def is_promotional(self, message: ClaimedMessage) -> bool:
        if message.campaign_id:
            return self.campaigns[message.campaign_id].is_promotional
        return self.step(message).flow.is_promotional

    def step(self, message: ClaimedMessage) -> FlowStep:
        """The flow step of a flow message (a Message belongs to a campaign or to a flow step, never neither)."""
        if message.flow_step_id is None:
            raise ValueError(f"message {message.id} has neither a campaign nor a flow step")
        return self.steps[message.flow_step_id]

    def template(self, message: ClaimedMessage) -> EmailTemplate:
        template = self.campaigns[message.campaign_id].template if message.campaign_id else self.step(message).template
        if template is None:
            raise ValueError(f"message {message.id}: its flow step has no email template")
        return template

    def subject(self, message: ClaimedMessage) -> str | None:
        """The B subject of an A/B test's B variant; None means the template's own subject."""
        if message.campaign_id and message.variant == "B":
            return self.campaigns[message.campaign_id].subject_b
        return None

    def event_properties(self, message: ClaimedMessage) -> dict:
        properties: dict = {"message_id": message.id}
        if message.campaign_id:
            properties["campaign_id"] = message.campaign_id
            if message.variant:
                properties["variant"] = message.variant
        if message.flow_step_id:
            properties["flow_id"] = self.step(message).flow_id
            properties["flow_step_id"] = message.flow_step_id
        return properties


def _send_claimed(
    *, workspace: Workspace, claimed: list[ClaimedMessage], claim_token: str, now: dt.datetime, connection
) -> SendResult:
    from customers.records import EventRecord
    from customers.services import events_bulk_record  # customers sits below campaigns; imported late for clarity

    policy = sending_policy(workspace=workspace)
    origins = _Origins.load(workspace=workspace, claimed=claimed)
    customers = {
        c["id"]: c
        for c in Customer.objects.filter(workspace=workspace, id__in={m.customer_id for m in claimed}).values(
            *CUSTOMER_FIELDS
        )
    }
    emails = {c["email"].strip().lower() for c in customers.values() if c["email"]}
    suppressed_emails = set(
        Suppression.objects.filter(workspace=workspace, email__in=emails).values_list("email", flat=True)
    )
    cap = dt.timedelta(hours=policy.frequency_cap_hours)
    last_sent: dict[int, dt.datetime] = {}
    if policy.frequency_cap_hours:
        last_sent = dict(
            Message.objects.filter(
                workspace=workspace,
                customer_id__in=list(customers),
                status=Message.Status.SENT,
                sent_at__gt=now - cap,
            )
            .values("customer_id")
            .annotate(last=Max("sent_at"))
            .values_list("customer_id", "last")
        )
    quiet_until = in_quiet_hours(policy=policy, workspace=workspace, now=now)
    csat_since = now - dt.timedelta(days=policy.hold_out_csat_days)

    # A unique promo code must exist (registered with the store, if one is connected) before its email goes out.
    wants_code = [m.id for m in claimed if origins.template(m).unique_promo_prefix]
    has_code = (
        set(
            PromoCode.objects.filter(workspace=workspace, message_id__in=wants_code).values_list(
                "message_id", flat=True
            )
        )
        if wants_code
        else set()
    )

    outcome: dict[str, list[int]] = defaultdict(list)
    deferred: dict[dt.datetime, list[int]] = defaultdict(list)
    deferred_reasons: dict[dt.datetime, str] = {}
    to_send: list[tuple[ClaimedMessage, dict]] = []
    for message in claimed:
        customer = customers.get(message.customer_id)
        run_status = origins.runs[message.flow_run_id][0] if message.flow_run_id in origins.runs else None
        if customer is None or not customer["email"]:
            outcome["suppressed"].append(message.id)
        elif (
            customer["email"].strip().lower() in suppressed_emails
            or customer["email_consent"] != ConsentStatus.SUBSCRIBED
        ):
            outcome["suppressed"].append(message.id)
        elif run_status == FlowRun.Status.GOAL_REACHED:
            outcome["cancelled"].append(message.id)
        elif origins.is_promotional(message) and (
            (policy.hold_out_open_tickets and customer["open_tickets_count"] > 0)
            or (
                policy.hold_out_csat_at_most
                and customer["last_csat_score"] is not None
                and customer["last_csat_score"] <= policy.hold_out_csat_at_most
                and customer["last_csat_at"]
                and customer["last_csat_at"] >= csat_since
            )
        ):
            outcome["held_out"].append(message.id)
        elif message.id in wants_code and message.id not in has_code:
            until = now + PROMO_CODE_WAIT
            deferred[until].append(message.id)
            deferred_reasons[until] = "promo_code"
        elif quiet_until is not None:
            deferred[quiet_until].append(message.id)
        elif message.customer_id in last_sent:
            deferred[last_sent[message.customer_id] + cap].append(message.id)
        else:
            to_send.append((message, customer))
            if policy.frequency_cap_hours:
                last_sent[message.customer_id] = now  # a second message to the same customer in this batch waits

    for status, key in (
        (Message.Status.SUPPRESSED, "suppressed"),
        (Message.Status.HELD_OUT, "held_out"),
        (Message.Status.CANCELLED, "cancelled"),
    ):
        if outcome[key]:
            Message.objects.filter(workspace=workspace, id__in=outcome[key]).update(status=status, claim_token="")
    for until, ids in deferred.items():
        reason = deferred_reasons.get(until) or ("quiet_hours" if quiet_until is not None else "frequency_cap")
        Message.objects.filter(workspace=workspace, id__in=ids).update(
            status=Message.Status.QUEUED, send_after=until, deferred_reason=reason, claim_token=""
        )

    # Everything that does not depend on the recipient is prepared here, once per batch and template: the
    # compiled template (sanitised, laid out, CSS-inlined, split), the rich blocks' queries, the constant context.
    from_email = policy.from_email or settings.DEFAULT_FROM_EMAIL
    groups: dict[tuple, list[tuple[ClaimedMessage, dict]]] = defaultdict(list)
    for message, customer in to_send:
        groups[(origins.template(message).pk, origins.subject(message))].append((message, customer))
    prepared: list[tuple[ClaimedMessage, dict, CompiledEmail, dict]] = []
    for (_, subject), items in groups.items():
        template = origins.template(items[0][0])
        compiled = compiled_template(
            workspace=workspace, template=template, subject=subject, postal_address=policy.postal_address
        )
        contexts = {
            message.id: merge_context(workspace=workspace, customer=customer, template=template, token=message.token)
            for message, customer in items
        }
        add_rich_fields(
            workspace=workspace,
            compiled=compiled,
            contexts=contexts,
            cart_ids={
                m.customer_id: int(origins.runs[m.flow_run_id][1].get("cart_id") or 0)
                for m, _ in items
                if m.flow_run_id in origins.runs
            },
            customer_ids={m.id: m.customer_id for m, _ in items},
            product_ids={
                m.id: int(origins.runs[m.flow_run_id][1].get("product_pk") or 0)
                for m, _ in items
                if m.flow_run_id in origins.runs
            },
        )
        prepared.extend((message, customer, compiled, contexts[message.id]) for message, customer in items)

    sent = 0
    failed: dict[int, str] = {}
    transient: Exception | None = None
    events = []
    with SentMarks(workspace_id=workspace.pk) as marks:
        for message, customer, compiled, context in prepared:
            rendered = render_email(compiled, context)
            email = build_email(rendered=rendered, to=customer["email"], token=message.token, from_email=from_email)
            marks.confirm()  # the previous message's mark is committed before this one is handed over
            try:
                connection.send_messages([email])
            except TRANSIENT_ERRORS as error:
                transient = error  # the server went away: this and the rest of the batch go back to the queue
                break
            except Exception as error:  # noqa: BLE001 - a rejected recipient must not stop the batch
                logger.warning("message %s failed: %s", message.id, error)
                failed[message.id] = str(error)[:255]
                continue
            anymail_status = getattr(email, "anymail_status", None)
            esp_id = (getattr(anymail_status, "message_id", None) or "") if anymail_status else ""
            subject = rendered.subject[:200]
            marks.sent(
                message_id=message.id,
                sent_at=now,
                to_email=customer["email"],
                subject=subject,
                esp_message_id=str(esp_id)[:200],
            )
            sent += 1
            events.append(
                EventRecord(
                    type="email_sent",
                    occurred_at=now,
                    customer_id=customer["id"],
                    external_id=f"email_sent:{message.id}",
                    properties=origins.event_properties(message) | {"subject": subject},
                )
            )
    for message_id, reason in failed.items():
        Message.objects.filter(workspace=workspace, id=message_id).update(
            status=Message.Status.FAILED, error=reason, claim_token=""
        )
    if events:
        events_bulk_record(workspace=workspace, records=events)
    if transient is not None:
        Message.objects.filter(
            workspace=workspace, id__in=[m.id for m in claimed], claim_token=claim_token, status=Message.Status.SENDING
        ).update(status=Message.Status.QUEUED, claim_token="")
        raise transient
    return SendResult(
        sent=sent,
        failed=len(failed),
        suppressed=len(outcome["suppressed"]),
        held_out=len(outcome["held_out"]),
        cancelled=len(outcome["cancelled"]),
        deferred=sum(len(v) for v in deferred.values()),
    )


@contextmanager
def _asynchronous_commits():
    """On PostgreSQL, commit the send loop's small status UPDATEs without waiting for the WAL flush.

    A killed worker loses nothing by this (the database server already has the commit); only a crash of the
    database server itself could forget the last fraction of a second of "sent" marks, whose messages would then
    be sent again after the lease. Waiting for a disk flush per message instead capped a worker at ~100 msg/s."""
    if db_connection.vendor != "postgresql":
        yield
        return
    with db_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with db_connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
