"""The customer list's server time at 100,000 customers (issue: under 200 ms), through the real view.

Each row requests /w/<slug>/customers/ with the Django test client (middleware, scope, permission, selector,
paginator count, template) as an htmx request, so the figure is the server's whole time for what the browser
swaps in; "full page" also renders the filter form's tag / country / RFM choices. The baseline is the same request
in the same run with the list's indexes (the pg_trgm search index and the btree indexes on spend, last order, RFM
group, name, email, phone and tags) dropped inside a transaction that is rolled back afterwards.
"""

import random
import uuid
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from bench.common import median_ms, row, throwaway_workspace

FULL_SIZE = 100_000
TARGET = "< 200 ms at 100,000"
FIRST = [
    "Ann",
    "Bob",
    "Cid",
    "Dee",
    "Eve",
    "Fay",
    "Gus",
    "Hal",
    "Ivy",
    "Jon",
    "Kim",
    "Lea",
    "Max",
    "Noa",
    "Oli",
    "Pam",
    "Quin",
    "Rae",
    "Sam",
    "Tia",
    "Uma",
    "Vic",
    "Wes",
    "Xan",
    "Yas",
    "Zoe",
]
LAST = [
    "Smith",
    "Jones",
    "Brown",
    "Taylor",
    "Wilson",
    "Davies",
    "Evans",
    "Thomas",
    "Roberts",
    "Walker",
    "Moreau",
    "Garcia",
    "Müller",
    "Rossi",
    "Novak",
    "Kowalski",
    "Silva",
    "Nguyen",
    "Kim",
    "Sato",
    "Okafor",
    "Haddad",
]
COUNTRIES = ["US", "US", "US", "GB", "FR", "DE", "CA", "AU", "ES", "IT"]
GROUPS = [
    "Champions",
    "Loyal",
    "Active",
    "Needs attention",
    "New",
    "Promising",
    "At risk",
    "Almost lost",
    "Dormant",
    "",
]
INDEXES = [
    "customer_search_trgm",
    "customer_ws_last_order",
    "customer_ws_recent_order",
    "customer_ws_spent",
    "customer_ws_rfm_live",
    "customer_ws_name",
    "customer_ws_email",
    "customer_ws_phone",
    "customer_tag_ws_name",
    "customer_ws_created",
    "customer_ws_country_spent",
]


def _fill(workspace, n: int) -> None:
    from customers.models import Customer, CustomerTag

    generator = random.Random(3)
    now = timezone.now()
    batch = []
    for index in range(n):
        ordered = generator.random() < 0.7
        orders = generator.randint(1, 12) if ordered else 0
        spent = Decimal(generator.randint(15, 400) * orders) if ordered else Decimal("0")
        first, last = generator.choice(FIRST), generator.choice(LAST)
        batch.append(
            Customer(
                workspace=workspace,
                source="demo",
                external_id=f"b{index}",
                first_name=first,
                last_name=last,
                email=f"{first.lower()}.{last.lower()}{index}@example.org",
                phone=f"+1415{index:07d}",
                country=generator.choice(COUNTRIES),
                email_consent="subscribed" if generator.random() < 0.4 else "not_subscribed",
                orders_count=orders,
                total_spent=spent,
                average_order_value=(spent / orders) if orders else 0,
                last_order_at=now - timedelta(days=generator.randint(0, 900)) if ordered else None,
                first_order_at=now - timedelta(days=900) if ordered else None,
                rfm_group=generator.choice(GROUPS) if ordered else "",
            )
        )
        if len(batch) == 5000:
            Customer.objects.bulk_create(batch)
            batch = []
    Customer.objects.bulk_create(batch)
    ids = list(Customer.objects.filter(workspace=workspace).values_list("id", flat=True))
    tags = [
        CustomerTag(workspace=workspace, customer_id=cid, name=generator.choice(["vip", "wholesale", "press", "staff"]))
        for cid in generator.sample(ids, len(ids) // 10)
    ]
    CustomerTag.objects.bulk_create(tags, batch_size=5000, ignore_conflicts=True)
    # What autovacuum does to a table that just took 100,000 rows: statistics and the visibility map.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE customers_customer")
            cursor.execute("VACUUM ANALYZE customers_customertag")
        else:
            cursor.execute("ANALYZE")


QUERIES = [
    ("default sort, page 1", {}),
    ("search name 'walker'", {"q": "walker"}),
    ("search email fragment 'zoe.kim12'", {"q": "zoe.kim12"}),
    ("search phone '(415) 000-12'", {"q": "(415) 000-12"}),
    (
        "country + consent + spent range, by spend",
        {"country": "FR", "email_consent": "subscribed", "spent_min": "500", "spent_max": "2000", "sort": "spent"},
    ),
    ("tag 'vip', ordered, by name", {"tag": "vip", "ordered": "yes", "sort": "name"}),
    ("rfm_group 'At risk', last order range", {"rfm_group": "At risk", "last_order_from": "2024-01-01"}),
    ("page 40, sort by name", {"sort": "name", "page": "40"}),
]


def _drop_indexes() -> None:
    with connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def run(args) -> list[dict]:
    from crm.models import Membership, User

    n = max(2000, int(FULL_SIZE * args.scale))
    rows: list[dict] = []
    with throwaway_workspace("bench-list") as workspace:
        _fill(workspace, n)
        user = User.objects.create_user(email=f"bench-{uuid.uuid4().hex[:8]}@example.org", password=None)
        try:
            Membership.objects.create(workspace=workspace, user=user, role="owner")
            client = Client()
            client.force_login(user)
            base = f"/w/{workspace.slug}/customers/"

            def request(params, *, htmx=True):
                headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
                response = client.get(base, params, **headers)
                assert response.status_code == 200, response.status_code
                return response

            cases = [(f"customer list: {label}", params, True) for label, params in QUERIES]
            cases.insert(1, ("customer list: full page (filter choices cached)", {}, False))
            measured = {}
            for label, params, htmx in cases:
                request(params, htmx=htmx)  # warm-up
                measured[label] = median_ms(lambda p=params, h=htmx: request(p, htmx=h), repeat=args.repeat)
            baselines = {}
            with transaction.atomic():
                _drop_indexes()
                for label, params, htmx in cases:
                    request(params, htmx=htmx)
                    baselines[label] = median_ms(
                        lambda p=params, h=htmx: request(p, htmx=h), repeat=max(1, args.repeat // 2)
                    )
                transaction.set_rollback(True)
            for label, _, _ in cases:
                rows.append(row(label, n=n, median=measured[label], baseline=baselines[label], target=TARGET))
        finally:
            user.delete()
    return rows
