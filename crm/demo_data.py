"""Synthetic store data for the demo workspace and the benchmarks.

Realistic on purpose: heavy-tailed spend, many one-time buyers and a loyal core, seasonality (November and
December peaks), weekday and hour-of-day patterns, product categories with favourites per customer, page and
product views, add-to-cart and checkout events before orders, browse-only sessions and abandoned carts.
Everything is produced as canonical records and written through the customers bulk upserts.
"""

import datetime as dt
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from faker import Faker

from customers.records import CartRecord, CustomerRecord, EventRecord, OrderLineRecord, OrderRecord, ProductRecord

CATEGORIES = {
    "Apparel": (
        [
            "Linen Shirt",
            "Merino Sweater",
            "Denim Jacket",
            "Cotton Tee",
            "Chino Trousers",
            "Rain Parka",
            "Wool Scarf",
            "Hoodie",
        ],
        45.0,
    ),
    "Shoes": (["Trail Runner", "Leather Boot", "Canvas Sneaker", "Slip-on Loafer", "Sandal"], 90.0),
    "Accessories": (["Leather Belt", "Canvas Tote", "Sunglasses", "Beanie", "Watch Strap", "Wallet"], 30.0),
    "Home": (["Ceramic Mug", "Scented Candle", "Linen Throw", "Plant Pot", "Coffee Grinder"], 28.0),
    "Beauty": (["Face Serum", "Hand Cream", "Lip Balm", "Shampoo Bar", "Body Oil"], 22.0),
    "Outdoor": (["Water Bottle", "Day Pack", "Camp Mug", "Headlamp", "Trekking Poles"], 38.0),
}
COLOURS = ["Black", "Navy", "Olive", "Sand", "Rust", "Grey"]
DISCOUNT_CODES = ["WELCOME10", "SPRING15", "VIP20", "FREESHIP", "BLACKFRIDAY"]
# Relative order volume by month (Jan..Dec) and by weekday (Mon..Sun); hours peak at lunch and evening.
MONTH_WEIGHTS = np.array([0.8, 0.75, 0.85, 0.9, 0.95, 0.9, 0.85, 0.9, 0.95, 1.05, 1.5, 1.8])
WEEKDAY_WEIGHTS = np.array([1.0, 0.95, 0.95, 1.0, 1.05, 1.2, 1.25])
HOUR_WEIGHTS = np.array(
    [
        0.2,
        0.1,
        0.05,
        0.05,
        0.05,
        0.1,
        0.3,
        0.6,
        0.8,
        0.9,
        1.0,
        1.2,
        1.5,
        1.3,
        1.0,
        0.9,
        0.9,
        1.0,
        1.2,
        1.5,
        1.8,
        1.9,
        1.4,
        0.6,
    ]
)


@dataclass(frozen=True, kw_only=True)
class DemoStore:
    products: list[ProductRecord]
    customers: list[CustomerRecord]
    orders: list[OrderRecord]
    carts: list[CartRecord]
    events: list[EventRecord]


def _weighted_timestamps(rng: np.random.Generator, n: int, start: dt.datetime, end: dt.datetime) -> np.ndarray:
    """``n`` POSIX timestamps between start and end following the month, weekday and hour weights."""
    days = np.arange(start.date(), end.date(), dtype="datetime64[D]")
    months = days.astype("datetime64[M]").astype(int) % 12
    weekdays = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday
    weights = MONTH_WEIGHTS[months] * WEEKDAY_WEIGHTS[weekdays]
    # Gentle growth: the store sells a little more every month.
    weights = weights * np.linspace(0.7, 1.3, len(days))
    chosen = rng.choice(len(days), size=n, p=weights / weights.sum())
    hours = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    seconds = rng.integers(0, 3600, size=n)
    return days[chosen].astype("datetime64[s]").astype(np.int64) + hours * 3600 + seconds


def _ts(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)


def generate_store(
    *, customers: int, orders: int, now: dt.datetime, seed: int = 42, source: str = "demo", events: bool = True
) -> DemoStore:
    rng = np.random.default_rng(seed)
    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR"])
    fake.seed_instance(seed)
    start = now - dt.timedelta(days=730)

    products: list[ProductRecord] = []
    for category, (names, base_price) in CATEGORIES.items():
        for name in names:
            for colour in rng.choice(COLOURS, size=2, replace=False):
                index = len(products) + 1
                price = Decimal(str(round(float(base_price * rng.lognormal(0, 0.35)), 0) - 0.01))
                products.append(
                    ProductRecord(
                        source=source,
                        external_id=f"p{index}",
                        title=f"{name} — {colour}",
                        sku=f"SKU-{index:04d}",
                        category=category,
                        vendor="Demo Outfitters",
                        price=max(price, Decimal("4.99")),
                        inventory_quantity=int(rng.integers(0, 400)),
                        is_in_stock=bool(rng.random() > 0.05),
                        image_url="",
                        url=f"https://shop.example.com/products/p{index}",
                        updated_at=start,
                    )
                )
    product_prices = np.array([float(p.price) for p in products])
    product_categories = np.array([p.category for p in products])
    category_names = list(CATEGORIES)

    # Who buys: ~70% of customers order at least once; ~60% of buyers buy once and the rest (the loyal core) share
    # the repeat orders with heavy-tailed weights.
    n_buyers = max(1, min(customers, int(customers * 0.7), orders))
    repeaters = rng.random(n_buyers) < 0.4
    loyalty = np.minimum(rng.pareto(2.5, size=n_buyers) + 1.0, 8.0) * repeaters
    extra_orders = max(orders - n_buyers, 0)
    if extra_orders and loyalty.sum() > 0:
        orders_per_buyer = 1 + rng.multinomial(extra_orders, loyalty / loyalty.sum())
    else:
        orders_per_buyer = np.ones(n_buyers, dtype=int)
    favourite = rng.integers(0, len(category_names), size=customers)
    spend_level = rng.lognormal(0, 0.4, size=customers)

    # Each buyer is acquired at a time following the seasonal and weekday pattern (with growth); their first order
    # is then, and repeat orders fall between acquisition and now at the usual hours of the day.
    horizon = now - dt.timedelta(hours=2)
    acquired = _weighted_timestamps(rng, n_buyers, start, horizon)
    order_customer = np.repeat(np.arange(n_buyers), orders_per_buyer)
    is_first = np.concatenate([[True], order_customer[1:] != order_customer[:-1]])
    # Repeat buyers buy for a while and then about half of them lapse, somewhere between their first order and now:
    # the churn that the dashboard and the BG/NBD predictions should find (with everyone buying until today, the
    # model's best fit is the degenerate "everyone drops out at the same rate").
    lapses = rng.random(n_buyers) < 0.5
    active_share = np.where(lapses, rng.uniform(0.15, 0.85, size=n_buyers), 1.0)
    span = (horizon.timestamp() - acquired[order_customer]) * active_share[order_customer]
    repeat_day = acquired[order_customer] + (rng.random(len(order_customer)) * span // 86400) * 86400
    repeat_time = (repeat_day // 86400) * 86400 + rng.choice(
        24, size=len(order_customer), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
    ) * 3600
    order_times = np.where(is_first, acquired[order_customer], np.maximum(repeat_time, acquired[order_customer] + 3600))
    order_times = np.minimum(order_times, horizon.timestamp())
    sequence = np.argsort(order_times, kind="stable")
    order_times, order_customer = order_times[sequence], order_customer[sequence]

    first_order: dict[int, float] = {int(i): float(acquired[i]) for i in range(n_buyers)}

    customer_records: list[CustomerRecord] = []
    for i in range(customers):
        first = first_order.get(i)
        created = (
            _ts(first - rng.integers(0, 30 * 86400))
            if first
            else _ts(float(_weighted_timestamps(rng, 1, start, now)[0]))
        )
        created = max(created, start)
        profile = fake.simple_profile()
        first_name, last_name = fake.first_name(), fake.last_name()
        # Names keep their accents; addresses are ASCII, as nearly every mailbox provider requires (Zoé -> zoe).
        local_part = _ascii(f"{first_name}.{last_name}.{i}")
        email = f"{local_part}@{rng.choice(['example.com', 'mail.example.org', 'shopper.example.net'])}"
        subscribed = rng.random() < 0.62
        customer_records.append(
            CustomerRecord(
                source=source,
                external_id=f"c{i + 1}",
                email=email.lower().replace(" ", ""),
                first_name=first_name,
                last_name=last_name,
                phone=f"+1415555{int(rng.integers(0, 10000)):04d}" if rng.random() < 0.5 else "",
                birth_date=profile["birthdate"] if rng.random() < 0.6 else None,
                gender={"F": "female", "M": "male"}.get(profile["sex"], ""),
                city=fake.city(),
                region="",
                country=str(rng.choice(["US", "US", "US", "GB", "DE", "FR", "CA"])),
                postcode=fake.postcode(),
                language=str(rng.choice(["en", "en", "en", "de", "fr"])),
                email_consent="subscribed" if subscribed else "not_subscribed",
                email_consent_at=created,
                email_consent_source="checkout" if subscribed else "",
                email_consent_version="2025-01" if subscribed else "",
                loyalty_points=int(rng.integers(0, 40) * 10),
                preferences={"size": str(rng.choice(["S", "M", "L", "XL"])), "colour": str(rng.choice(COLOURS))},
                tags=tuple(
                    t for t, p in (("newsletter", 0.3), ("wholesale", 0.02), ("gift-buyer", 0.08)) if rng.random() < p
                ),
                created_at=created,
                updated_at=created,
            )
        )

    order_records: list[OrderRecord] = []
    event_records: list[EventRecord] = []
    cart_records: list[CartRecord] = []
    for n, (ts, cust) in enumerate(zip(order_times, order_customer, strict=True), start=1):
        cust = int(cust)
        placed = _ts(ts)
        fav = category_names[favourite[cust]]
        n_lines = int(min(1 + rng.poisson(0.6), 5))
        lines = []
        for _ in range(n_lines):
            pool = np.flatnonzero(product_categories == fav) if rng.random() < 0.6 else np.arange(len(products))
            p = int(rng.choice(pool))
            quantity = int(1 + rng.poisson(0.25 * spend_level[cust]))
            lines.append(
                OrderLineRecord(
                    external_id=f"l{n}-{len(lines)}",
                    product_external_id=products[p].external_id,
                    title=products[p].title,
                    sku=products[p].sku,
                    category=products[p].category,
                    quantity=quantity,
                    unit_price=products[p].price,
                )
            )
        subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
        code = str(rng.choice(DISCOUNT_CODES)) if rng.random() < 0.18 else ""
        discount = (subtotal * Decimal("0.15")).quantize(Decimal("0.01")) if code else Decimal("0")
        shipping = Decimal("0") if subtotal > 75 else Decimal("6.95")
        tax = ((subtotal - discount) * Decimal("0.08")).quantize(Decimal("0.01"))
        total = subtotal - discount + shipping + tax
        roll = rng.random()
        cancelled = placed + dt.timedelta(hours=3) if roll < 0.03 else None
        refunded = (total * Decimal("0.5")).quantize(Decimal("0.01")) if 0.03 <= roll < 0.07 else Decimal("0")
        order_records.append(
            OrderRecord(
                source=source,
                external_id=f"o{n}",
                customer_external_id=f"c{cust + 1}",
                placed_at=placed,
                email=customer_records[cust].email,
                number=f"#{1000 + n}",
                status="cancelled" if cancelled else ("closed" if placed < now - dt.timedelta(days=14) else "open"),
                financial_status="refunded" if refunded == total else ("partially_refunded" if refunded else "paid"),
                fulfillment_status="fulfilled" if placed < now - dt.timedelta(days=3) else "",
                currency="USD",
                subtotal=subtotal,
                discount_total=discount,
                discount_codes=(code,) if code else (),
                shipping_total=shipping,
                tax_total=tax,
                total=total,
                refunded_total=refunded,
                cancelled_at=cancelled,
                refunded_at=placed + dt.timedelta(days=9) if refunded else None,
                updated_at=placed + dt.timedelta(days=10),
                lines=tuple(lines),
            )
        )
        if events:
            event_records.extend(_session_events(rng, n, cust, placed, lines, products, product_categories, fav, True))

    if events:
        # Browse-only sessions, some of which start a checkout and leave (abandoned carts).
        n_browse = int(len(order_records) * 0.6)
        browse_times = _weighted_timestamps(rng, n_browse, start, now)
        browse_customers = rng.integers(0, customers, size=n_browse)
        for k, (ts, cust) in enumerate(zip(browse_times, browse_customers, strict=True)):
            cust = int(cust)
            when = _ts(ts)
            fav = category_names[favourite[cust]]
            anonymous = rng.random() < 0.35
            session = _session_events(
                rng, f"b{k}", cust, when, [], products, product_categories, fav, False, anonymous=anonymous
            )
            event_records.extend(session)
            started = [e for e in session if e.type == "checkout_started"]
            if started and not anonymous:
                cart_lines = started[0].properties["lines"]
                cart_records.append(
                    CartRecord(
                        source=source,
                        external_id=f"cart-b{k}",
                        started_at=started[0].occurred_at,
                        customer_external_id=f"c{cust + 1}",
                        email=customer_records[cust].email,
                        lines=tuple(cart_lines),
                        value=Decimal(started[0].properties["value"]),
                        checkout_url=f"https://shop.example.com/checkouts/b{k}",
                        updated_at=started[0].occurred_at,
                    )
                )
    _ = product_prices
    return DemoStore(
        products=products, customers=customer_records, orders=order_records, carts=cart_records, events=event_records
    )


def _session_events(rng, key, cust, when, lines, products, product_categories, fav, ordered, anonymous=False):
    """The events of one storefront visit that ends ``when`` (an order, or leaving)."""
    visit = f"v-{key}"
    customer = "" if anonymous else f"c{cust + 1}"
    anonymous_id = f"anon-{cust}-{key}"
    pool = np.flatnonzero(product_categories == fav)
    views = [int(rng.choice(pool)) for _ in range(int(1 + rng.poisson(1.5)))]
    t = when - dt.timedelta(minutes=int(3 + 2 * len(views) + rng.integers(0, 15)))
    records = []

    def add(event_type, props, step):
        nonlocal t
        t = t + dt.timedelta(seconds=int(step))
        records.append(
            EventRecord(
                type=event_type,
                occurred_at=min(t, when),
                source="demo",
                external_id=f"{visit}-{len(records)}",
                customer_external_id=customer,
                anonymous_id=anonymous_id,
                properties={"session": visit, **props},
            )
        )

    add("page_viewed", {"path": "/", "title": "Home"}, 0)
    for p in views:
        add(
            "product_viewed",
            {
                "product_id": products[p].external_id,
                "title": products[p].title,
                "category": products[p].category,
                "path": f"/products/{products[p].external_id}",
            },
            rng.integers(20, 120),
        )
    if ordered:
        for line in lines:
            add(
                "added_to_cart",
                {
                    "product_id": line.product_external_id,
                    "title": line.title,
                    "quantity": line.quantity,
                    "price": str(line.unit_price),
                },
                rng.integers(10, 60),
            )
        add("checkout_started", {"value": str(sum(l.unit_price * l.quantity for l in lines))}, 30)  # noqa: E741
    else:
        roll = rng.random()
        if roll < 0.25:
            p = views[-1]
            add(
                "added_to_cart",
                {
                    "product_id": products[p].external_id,
                    "title": products[p].title,
                    "quantity": 1,
                    "price": str(products[p].price),
                },
                rng.integers(10, 60),
            )
            if roll < 0.12:
                cart_lines = [
                    {
                        "product_external_id": products[p].external_id,
                        "sku": products[p].sku,
                        "title": products[p].title,
                        "quantity": 1,
                        "price": str(products[p].price),
                    }
                ]
                add("checkout_started", {"value": str(products[p].price), "lines": cart_lines}, 40)
    return records


def chunks(items: list, size: int) -> Iterator[list]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _ascii(text: str) -> str:
    """Accents dropped, anything else that is not ASCII removed: "Zoé.Schäfer" -> "Zoe.Schafer"."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
