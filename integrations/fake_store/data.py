"""The fake store's catalogue: platform-neutral customers, products, orders and checkouts that the fake Shopify and
WooCommerce servers render in their own formats. Generated deterministically from a seed."""

import datetime as dt
import random
import threading
from dataclasses import dataclass, field
from decimal import Decimal

FIRST_NAMES = [
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Donald",
    "Hedy",
    "John",
    "Katherine",
    "Tim",
    "Anita",
    "Guido",
    "Sophie",
    "Yukihiro",
]
LAST_NAMES = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Knuth",
    "Lamarr",
    "Backus",
    "Johnson",
    "Berners-Lee",
    "Borg",
    "Rossum",
    "Wilson",
    "Matsumoto",
]
CITIES = [
    ("Lyon", "ARA", "FR", "69001"),
    ("Austin", "TX", "US", "73301"),
    ("Leeds", "ENG", "GB", "LS1"),
    ("Porto", "13", "PT", "4000"),
    ("Denver", "CO", "US", "80202"),
    ("Ghent", "VOV", "BE", "9000"),
]
CATALOGUE = [
    ("Trail Runner", "Shoes", "Northpeak", "89.00"),
    ("Merino Tee", "Apparel", "Woolly", "35.00"),
    ("Rain Shell", "Outerwear", "Northpeak", "149.00"),
    ("Camp Mug", "Gear", "Campfire", "14.50"),
    ("Wool Socks", "Apparel", "Woolly", "12.00"),
    ("Headlamp", "Gear", "Lumen", "29.99"),
    ("Daypack 22L", "Bags", "Carry Co", "79.00"),
    ("Beanie", "Apparel", "Woolly", "22.00"),
    ("Trekking Poles", "Gear", "Northpeak", "59.00"),
    ("Water Bottle", "Gear", "Campfire", "18.00"),
]


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


@dataclass
class FakeCustomer:
    id: int
    email: str
    first_name: str
    last_name: str
    phone: str
    address1: str
    city: str
    province: str
    country: str
    zip: str
    tags: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    is_subscribed: bool = False


@dataclass
class FakeProduct:
    id: int
    title: str
    handle: str
    sku: str
    category: str
    vendor: str
    price: Decimal
    inventory: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass
class FakeLine:
    id: int
    product_id: int
    title: str
    sku: str
    category: str
    quantity: int
    price: Decimal


@dataclass
class FakeOrder:
    id: int
    number: int
    customer_id: int | None
    email: str
    created_at: dt.datetime
    updated_at: dt.datetime
    lines: list[FakeLine]
    shipping: Decimal
    tax: Decimal
    discount: Decimal
    discount_code: str = ""
    currency: str = "USD"
    cancelled_at: dt.datetime | None = None
    refunded: Decimal = Decimal("0")
    refunded_at: dt.datetime | None = None
    is_fulfilled: bool = False

    @property
    def subtotal(self) -> Decimal:
        return sum((line.price * line.quantity for line in self.lines), Decimal("0"))

    @property
    def total(self) -> Decimal:
        return self.subtotal - self.discount + self.shipping + self.tax


@dataclass
class FakeCheckout:
    id: int
    token: str
    customer_id: int | None
    email: str
    created_at: dt.datetime
    updated_at: dt.datetime
    lines: list[FakeLine]
    completed_at: dt.datetime | None = None
    currency: str = "USD"

    @property
    def total(self) -> Decimal:
        return sum((line.price * line.quantity for line in self.lines), Decimal("0"))


@dataclass
class FakeCatalogue:
    customers: list[FakeCustomer] = field(default_factory=list)
    products: list[FakeProduct] = field(default_factory=list)
    orders: list[FakeOrder] = field(default_factory=list)
    checkouts: list[FakeCheckout] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    next_id: int = 1000

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id

    def customer(self, customer_id: int | None) -> FakeCustomer | None:
        return next((c for c in self.customers if c.id == customer_id), None)

    def product(self, product_id: int) -> FakeProduct | None:
        return next((p for p in self.products if p.id == product_id), None)

    def add_order(
        self,
        *,
        created_at: dt.datetime,
        customer: FakeCustomer | None = None,
        quantity: int = 1,
        product: FakeProduct | None = None,
        updated_at: dt.datetime | None = None,
    ) -> FakeOrder:
        """Place an order (tests use it to simulate orders whose webhooks were missed)."""
        with self.lock:
            product = product or self.products[0]
            customer = customer or self.customers[0]
            order_id = self.new_id()
            order = FakeOrder(
                id=order_id,
                number=len(self.orders) + 1001,
                customer_id=customer.id,
                email=customer.email,
                created_at=created_at,
                updated_at=updated_at or created_at,
                lines=[
                    FakeLine(
                        id=self.new_id(),
                        product_id=product.id,
                        title=product.title,
                        sku=product.sku,
                        category=product.category,
                        quantity=quantity,
                        price=product.price,
                    )
                ],
                shipping=Decimal("5.00"),
                tax=Decimal("0.00"),
                discount=Decimal("0.00"),
            )
            self.orders.append(order)
            return order


def generate(
    *,
    seed: int = 7,
    customers: int = 40,
    products: int = 10,
    orders: int = 120,
    checkouts: int = 8,
    days: int = 30,
    now: dt.datetime | None = None,
) -> FakeCatalogue:
    rng = random.Random(seed)
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    start = now - dt.timedelta(days=days)
    catalogue = FakeCatalogue()

    def moment(after: dt.datetime) -> dt.datetime:
        span = max(int((now - after).total_seconds()) - 3600, 1)
        return after + dt.timedelta(seconds=rng.randrange(span))

    for index in range(products):
        title, category, vendor, price = CATALOGUE[index % len(CATALOGUE)]
        suffix = "" if index < len(CATALOGUE) else f" {index // len(CATALOGUE) + 1}"
        created = start - dt.timedelta(days=30)
        catalogue.products.append(
            FakeProduct(
                id=catalogue.new_id(),
                title=title + suffix,
                handle=(title + suffix).lower().replace(" ", "-"),
                sku=f"SKU-{index + 1:04d}",
                category=category,
                vendor=vendor,
                price=Decimal(price),
                inventory=rng.randrange(0, 80),
                created_at=created,
                updated_at=moment(start),
            )
        )
    for index in range(customers):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, province, country, postcode = rng.choice(CITIES)
        created = start + dt.timedelta(seconds=rng.randrange(int((now - start).total_seconds()) // 2))
        catalogue.customers.append(
            FakeCustomer(
                id=catalogue.new_id(),
                email=f"{first}.{last}.{index}@example.com".lower(),
                first_name=first,
                last_name=last,
                phone=f"+1555{rng.randrange(1000000, 9999999)}",
                address1=f"{rng.randrange(1, 200)} Main St",
                city=city,
                province=province,
                country=country,
                zip=postcode,
                tags=["vip"] if rng.random() < 0.1 else [],
                created_at=created,
                updated_at=moment(created),
                is_subscribed=rng.random() < 0.5,
            )
        )
    for index in range(orders):
        customer = rng.choice(catalogue.customers) if catalogue.customers else None
        created = moment(customer.created_at if customer else start)
        lines = []
        for _ in range(rng.randrange(1, 4)):
            product = rng.choice(catalogue.products)
            lines.append(
                FakeLine(
                    id=catalogue.new_id(),
                    product_id=product.id,
                    title=product.title,
                    sku=product.sku,
                    category=product.category,
                    quantity=rng.randrange(1, 3),
                    price=product.price,
                )
            )
        order = FakeOrder(
            id=catalogue.new_id(),
            number=1001 + index,
            customer_id=customer.id if customer else None,
            email=customer.email if customer else f"guest{index}@example.com",
            created_at=created,
            updated_at=created + dt.timedelta(minutes=rng.randrange(0, 120)),
            lines=lines,
            shipping=Decimal("5.00"),
            tax=Decimal("0.00"),
            discount=Decimal("0.00"),
            is_fulfilled=rng.random() < 0.7,
        )
        if rng.random() < 0.1:
            order.discount, order.discount_code = Decimal("10.00"), "WELCOME10"
        roll = rng.random()
        if roll < 0.05:
            order.cancelled_at = order.updated_at
        elif roll < 0.10:
            order.refunded = (order.subtotal / 2).quantize(Decimal("0.01"))
            order.refunded_at = order.updated_at
        catalogue.orders.append(order)
    for _ in range(checkouts):
        customer = rng.choice(catalogue.customers)
        created = moment(customer.created_at)
        product = rng.choice(catalogue.products)
        catalogue.checkouts.append(
            FakeCheckout(
                id=catalogue.new_id(),
                token=f"{rng.getrandbits(64):016x}",
                customer_id=customer.id,
                email=customer.email,
                created_at=created,
                updated_at=created + dt.timedelta(minutes=5),
                lines=[
                    FakeLine(
                        id=catalogue.new_id(),
                        product_id=product.id,
                        title=product.title,
                        sku=product.sku,
                        category=product.category,
                        quantity=1,
                        price=product.price,
                    )
                ],
            )
        )
    return catalogue
