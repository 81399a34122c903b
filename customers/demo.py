"""Demo data of the customers app, called by ``manage.py seed_demo`` after the synthetic store is written."""

import datetime as dt
import random
import re
import unicodedata
from decimal import Decimal

from django.utils import timezone

from crm.models import Membership, Workspace
from customers.models import Customer, Source
from customers.records import CustomerRecord, OrderLineRecord, OrderRecord


def seed(*, workspace: Workspace) -> None:
    seed_duplicates(workspace=workspace, count=15)
    seed_notes(workspace=workspace, count=20)


def _local_part(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z]", "", ascii_name)


def seed_duplicates(*, workspace: Workspace, count: int, seed: int = 7) -> int:
    """Create ``count`` profiles that duplicate existing customers, as a spreadsheet import would: a third share
    the email, a third the phone, a third the name and postcode. Each has one order, so a merge visibly moves
    something. Returns how many duplicates were created (0 when there are no customers to copy)."""
    from customers.services import customers_bulk_upsert, orders_bulk_upsert

    generator = random.Random(seed)
    originals = list(
        Customer.objects.filter(workspace=workspace, merged_into__isnull=True, erased_at__isnull=True)
        .exclude(email="")
        .exclude(external_id__startswith="demo-dup-")
        .order_by("id")[: max(count * 5, 50)]
    )
    if not originals:
        return 0
    chosen = generator.sample(originals, min(count, len(originals)))
    records, orders = [], []
    now = timezone.now()
    for index, original in enumerate(chosen):
        kind = index % 3
        if kind == 1 and not original.phone:
            kind = 0
        if kind == 2 and not original.postcode:
            kind = 0
        first, last = original.first_name, original.last_name
        local = f"{_local_part(first) or 'guest'}.{_local_part(last) or 'shopper'}"
        other_email = f"{local}{generator.randint(1, 99)}@mail.example"
        external_id = f"demo-dup-{original.id}"
        records.append(
            CustomerRecord(
                source=Source.CSV,
                external_id=external_id,
                email=original.email.upper() if kind == 0 else other_email,
                phone=original.phone if kind == 1 else "",
                first_name=first,
                last_name=last,
                postcode=original.postcode if kind == 2 else "",
                city=original.city,
                country=original.country,
                tags=("imported",),
                email_consent="subscribed" if generator.random() < 0.5 else None,
                email_consent_at=now - dt.timedelta(days=generator.randint(1, 30)),
            )
        )
        price = Decimal(generator.randint(20, 180))
        orders.append(
            OrderRecord(
                source=Source.CSV,
                external_id=f"demo-dup-order-{original.id}",
                customer_external_id=external_id,
                number=f"CSV-{original.id}",
                placed_at=now - dt.timedelta(days=generator.randint(5, 200)),
                subtotal=price,
                total=price,
                currency=workspace.currency,
                lines=(
                    OrderLineRecord(title="Gift card", sku="GIFT", category="Gift cards", quantity=1, unit_price=price),
                ),
            )
        )
    customers_bulk_upsert(workspace=workspace, records=records)
    orders_bulk_upsert(workspace=workspace, records=orders)
    return len(records)


NOTES = [
    "Called about a late parcel; promised a follow-up by Friday.",
    "Prefers to be contacted by email, not phone.",
    "VIP: bought for the whole team last Christmas.",
    "Asked about the size chart for the new collection.",
    "Returned a jacket (too small); exchanged for a larger size.",
]


def seed_notes(*, workspace: Workspace, count: int, seed: int = 11) -> int:
    from customers.services import note_create

    generator = random.Random(seed)
    membership = Membership.objects.filter(workspace=workspace).select_related("user").order_by("id").first()
    author = membership.user if membership else None
    customers = list(Customer.objects.filter(workspace=workspace, orders_count__gt=0).order_by("-total_spent")[:count])
    for customer in customers:
        note_create(
            workspace=workspace,
            customer=customer,
            author=author,
            body=generator.choice(NOTES),
            is_pinned=generator.random() < 0.2,
        )
    return len(customers)
