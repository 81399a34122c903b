"""Customers and everything that happened to them.

Every model here is tenant-owned (``TenantModel``: a workspace FK and a fail-closed scoped manager). Rows that
come from outside carry ``(workspace, source, external_id)`` (a NULL external_id means created in the CRM), the
key of the idempotent upserts in ``customers.services``. ``source_updated_at`` is the platform's own
``updated_at``: an update older than it is stale and never overwrites newer data.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models

from crm.models import TenantModel, Workspace


def workspace_key_without_plain_index(*, db_constraint: bool = True) -> models.ForeignKey:
    """The workspace foreign key of a table that bulk loads write: every index of such a table leads with the
    workspace, so an index on the workspace alone would only cost another index write per row.

    ``db_constraint=False`` for the tables an orders load writes a row per order or line into (orders, lines,
    events): PostgreSQL checks every new row's keys at commit by locking the referenced row (FOR KEY SHARE), and the
    workspace's is the same row every time, about a third of a 100,000-order load's commit. Those rows are only
    written inside the workspace's scope, and deleting a workspace still cascades through Django (as for
    segments' RFM history)."""
    return models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=db_constraint
    )


class Source(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    CSV = "csv", "CSV import"
    TRACKING = "tracking", "Storefront tracking"
    MANUAL = "manual", "Added by hand"
    DEMO = "demo", "Demo data"
    CRM = "crm", "CRM"


class ConsentStatus(models.TextChoices):
    SUBSCRIBED = "subscribed", "Subscribed"
    NOT_SUBSCRIBED = "not_subscribed", "Not subscribed"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    PENDING = "pending", "Pending confirmation"


class Gender(models.TextChoices):
    UNKNOWN = "", "Unknown"
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"


# The person's contact and demographic fields: what upserts write, merges fill in and exports list.
PROFILE_FIELDS = [
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "address_line",
    "city",
    "region",
    "country",
    "postcode",
    "language",
]


class Customer(TenantModel):
    # Every index leads with the workspace (the live-customer id index below among them).
    workspace = workspace_key_without_plain_index()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(max_length=100, null=True, blank=True)

    email = models.EmailField(blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="", help_text="E.164")
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    birth_date = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=10, choices=Gender.choices, blank=True, default="")
    address_line = models.CharField(max_length=255, blank=True, default="")
    city = models.CharField(max_length=100, blank=True, default="")
    region = models.CharField(max_length=100, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="", help_text="ISO 3166-1 alpha-2")
    postcode = models.CharField(max_length=20, blank=True, default="")
    language = models.CharField(max_length=10, blank=True, default="")

    email_consent = models.CharField(max_length=20, choices=ConsentStatus.choices, default=ConsentStatus.NOT_SUBSCRIBED)
    email_consent_at = models.DateTimeField(null=True, blank=True)
    email_consent_source = models.CharField(max_length=50, blank=True, default="")
    email_consent_version = models.CharField(max_length=50, blank=True, default="")
    sms_consent = models.CharField(max_length=20, choices=ConsentStatus.choices, default=ConsentStatus.NOT_SUBSCRIBED)
    sms_consent_at = models.DateTimeField(null=True, blank=True)
    sms_consent_source = models.CharField(max_length=50, blank=True, default="")
    sms_consent_version = models.CharField(max_length=50, blank=True, default="")

    loyalty_points = models.IntegerField(default=0)
    preferences = models.JSONField(default=dict, blank=True)
    custom_attributes = models.JSONField(default=dict, blank=True)

    # Denormalised purchase stats: updated when an order lands or changes, recomputed in bulk nightly.
    orders_count = models.PositiveIntegerField(default=0)
    total_spent = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    average_order_value = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    top_categories = models.JSONField(default=list, blank=True)

    # RFM, written by segments' bulk rescore. 0 = not scored (no orders).
    rfm_recency = models.PositiveSmallIntegerField(default=0)
    rfm_frequency = models.PositiveSmallIntegerField(default=0)
    rfm_monetary = models.PositiveSmallIntegerField(default=0)
    rfm_group = models.CharField(max_length=30, blank=True, default="")
    rfm_scored_at = models.DateTimeField(null=True, blank=True)

    # Predictions, written by analytics' nightly fit (BG/NBD + Gamma-Gamma). Null = not enough history.
    probability_alive = models.FloatField(null=True, blank=True)
    expected_orders_90d = models.FloatField(null=True, blank=True)
    predicted_clv = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    predicted_next_order_at = models.DateTimeField(null=True, blank=True)
    churn_risk = models.CharField(max_length=10, blank=True, default="")  # low / medium / high
    clv_tier = models.CharField(max_length=10, blank=True, default="")  # high / medium / low

    # Support signals, written by support's services, so segments can filter on them without importing support.
    open_tickets_count = models.PositiveIntegerField(default=0)
    last_csat_score = models.PositiveSmallIntegerField(null=True, blank=True)  # 1-5
    last_csat_at = models.DateTimeField(null=True, blank=True)
    last_nps_score = models.PositiveSmallIntegerField(null=True, blank=True)  # 0-10
    last_nps_at = models.DateTimeField(null=True, blank=True)

    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    erased_at = models.DateTimeField(null=True, blank=True)

    source_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "source", "external_id"], name="customer_unique_external")
        ]
        indexes = [
            models.Index(fields=["workspace", "email"], name="customer_ws_email"),
            models.Index(fields=["workspace", "phone"], name="customer_ws_phone"),
            models.Index(fields=["workspace", "last_order_at"], name="customer_ws_last_order"),
            models.Index(fields=["workspace", "total_spent"], name="customer_ws_spent"),
            # The list's country filter, alone or with a spend range or sorted by spend: a country is a few percent
            # of the customers, a spend range a third, and without it a count read the whole workspace.
            models.Index(fields=["workspace", "country", "total_spent"], name="customer_ws_country_spent"),
            # RFM group then spend (with erased_at) over live customers: segment counts like "At risk AND spent
            # over 500" are index-only scans; no RFM score column is indexed, so a rescore that moves scores within
            # a group can stay a HOT update.
            models.Index(
                fields=["workspace", "rfm_group", "total_spent", "erased_at"],
                condition=models.Q(merged_into__isnull=True),
                name="customer_ws_rfm_live",
            ),
            models.Index(fields=["workspace", "created_at"], name="customer_ws_created"),
            models.Index(fields=["workspace", "last_name", "first_name"], name="customer_ws_name"),
            # A segment's customer: a rule whose EXISTS finds candidates (recent buyers of a category) checks each
            # one is live and reads its RFM group from this index alone, without visiting the (wide) table.
            models.Index(
                fields=["workspace", "id"],
                include=["rfm_group"],
                condition=models.Q(merged_into__isnull=True, erased_at__isnull=True),
                name="customer_ws_id_live",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or f"Customer #{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_email_subscribed(self) -> bool:
        return self.email_consent == ConsentStatus.SUBSCRIBED


class CustomerTag(TenantModel):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "customer", "name"], name="customer_tag_unique")]
        indexes = [models.Index(fields=["workspace", "name"], name="customer_tag_ws_name")]

    def __str__(self) -> str:
        return self.name


class Product(TenantModel):
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(max_length=100, null=True, blank=True)
    title = models.CharField(max_length=255)
    sku = models.CharField(max_length=100, blank=True, default="")
    category = models.CharField(max_length=100, blank=True, default="")
    vendor = models.CharField(max_length=100, blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    inventory_quantity = models.IntegerField(null=True, blank=True)
    is_in_stock = models.BooleanField(default=True)
    image_url = models.URLField(max_length=500, blank=True, default="")
    url = models.URLField(max_length=500, blank=True, default="")
    source_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "source", "external_id"], name="product_unique_external")
        ]
        indexes = [
            models.Index(fields=["workspace", "category"], name="product_ws_category"),
            models.Index(fields=["workspace", "sku"], name="product_ws_sku"),
        ]

    def __str__(self) -> str:
        return self.title


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


class FinancialStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    AUTHORIZED = "authorized", "Authorized"
    PAID = "paid", "Paid"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    VOIDED = "voided", "Voided"


# The columns an order upsert overwrites on an existing order (both the portable and the PostgreSQL path).
ORDER_UPSERT_FIELDS = [
    "customer_id",
    "number",
    "email",
    "status",
    "financial_status",
    "fulfillment_status",
    "currency",
    "subtotal",
    "discount_total",
    "discount_codes",
    "shipping_total",
    "tax_total",
    "total",
    "refunded_total",
    "net_total",
    "placed_at",
    "cancelled_at",
    "refunded_at",
    "source_updated_at",
    "updated_at",
]


class Order(TenantModel):
    """An order. Revenue counts ``total - refunded_total`` of orders that are not cancelled (see ``net_total``)."""

    workspace = workspace_key_without_plain_index(db_constraint=False)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(max_length=100)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    number = models.CharField(max_length=50, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.OPEN)
    financial_status = models.CharField(max_length=20, choices=FinancialStatus.choices, default=FinancialStatus.PAID)
    fulfillment_status = models.CharField(max_length=20, blank=True, default="")
    currency = models.CharField(max_length=3, default="USD")
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    discount_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    discount_codes = models.JSONField(default=list, blank=True)
    shipping_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    tax_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    refunded_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    # Net revenue of this order: 0 when cancelled, else total - refunded_total. Stored so SQL sums stay simple.
    net_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    placed_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "source", "external_id"], name="order_unique_external")
        ]
        indexes = [
            models.Index(fields=["workspace", "placed_at"], name="order_ws_placed"),
            # The analytics minute tick reads the orders changed since its last run.
            models.Index(fields=["workspace", "updated_at"], name="order_ws_updated"),
            models.Index(fields=["workspace", "customer", "placed_at"], name="order_ws_customer_placed"),
            # Recent orders that count, with their customer and id: "bought X in the last N days" segment rules
            # read them index-only and join the lines by order id.
            models.Index(
                fields=["workspace", "placed_at", "customer", "id"],
                condition=~models.Q(status="cancelled"),
                name="order_ws_placed_live",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.number or self.external_id}"

    @property
    def is_cancelled(self) -> bool:
        return self.status == OrderStatus.CANCELLED


class OrderLine(TenantModel):
    workspace = workspace_key_without_plain_index(db_constraint=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="order_lines")
    external_id = models.CharField(max_length=100, blank=True, default="")
    title = models.CharField(max_length=255, blank=True, default="")
    sku = models.CharField(max_length=100, blank=True, default="")
    category = models.CharField(max_length=100, blank=True, default="")
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    discount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    # Copies of the order's customer, date and cancellation, written with the line (an order's lines are rewritten
    # whenever the order is, and a merge moves them with it): "bought in category X in the last N days" is then one
    # index range over the lines, with no join to the orders. No database constraint on the customer: the order's
    # own foreign key already guards it, and a constraint check per line would slow every bulk load.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )  # fmt: skip
    placed_at = models.DateTimeField()
    is_order_cancelled = models.BooleanField(default=False)

    class Meta:
        indexes = [
            # The order id last: "bought product X" finds the orders from the index alone.
            models.Index(fields=["workspace", "product", "order"], name="orderline_ws_product_order"),
            # Who bought in a category, and when, index-only (lines of orders that count).
            models.Index(
                fields=["workspace", "category", "placed_at"],
                include=["customer", "order"],
                condition=models.Q(is_order_cancelled=False),
                name="orderline_ws_category_bought",
            ),
        ]


class CartStatus(models.TextChoices):
    OPEN = "open", "Open"
    ABANDONED = "abandoned", "Abandoned"
    RECOVERED = "recovered", "Recovered"
    CONVERTED = "converted", "Converted"


class Cart(TenantModel):
    workspace = workspace_key_without_plain_index()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.TRACKING)
    external_id = models.CharField(max_length=100, help_text="The platform's checkout or cart token")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="carts")
    anonymous_id = models.CharField(max_length=64, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    lines = models.JSONField(default=list, blank=True)  # [{"product_id", "sku", "title", "quantity", "price"}]
    value = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="USD")
    checkout_url = models.URLField(max_length=1000, blank=True, default="")
    status = models.CharField(max_length=12, choices=CartStatus.choices, default=CartStatus.OPEN)
    started_at = models.DateTimeField()
    last_activity_at = models.DateTimeField()
    abandoned_at = models.DateTimeField(null=True, blank=True)
    recovered_order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "source", "external_id"], name="cart_unique_external")
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "last_activity_at"], name="cart_ws_status_activity"),
            models.Index(fields=["workspace", "customer"], name="cart_ws_customer"),
            # The analytics minute tick reads the carts changed since its last run.
            models.Index(fields=["workspace", "updated_at"], name="cart_ws_updated"),
        ]


class Note(TenantModel):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    is_pinned = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "customer", "-is_pinned", "-created_at"], name="note_ws_customer")]


class EventType(models.TextChoices):
    PAGE_VIEWED = "page_viewed", "Viewed a page"
    PRODUCT_VIEWED = "product_viewed", "Viewed a product"
    ADDED_TO_CART = "added_to_cart", "Added to cart"
    CHECKOUT_STARTED = "checkout_started", "Started checkout"
    CART_ABANDONED = "cart_abandoned", "Abandoned cart"
    ORDER_PLACED = "order_placed", "Placed an order"
    ORDER_CANCELLED = "order_cancelled", "Order cancelled"
    ORDER_REFUNDED = "order_refunded", "Order refunded"
    CUSTOMER_CREATED = "customer_created", "Became a customer"
    IDENTIFIED = "identified", "Identified on the storefront"
    CONSENT_CHANGED = "consent_changed", "Consent changed"
    EMAIL_SENT = "email_sent", "Was sent an email"
    EMAIL_OPENED = "email_opened", "Opened an email"
    EMAIL_CLICKED = "email_clicked", "Clicked an email"
    EMAIL_UNSUBSCRIBED = "email_unsubscribed", "Unsubscribed"
    EMAIL_BOUNCED = "email_bounced", "Email bounced"
    EMAIL_COMPLAINED = "email_complained", "Marked email as spam"
    TICKET_OPENED = "ticket_opened", "Opened a ticket"
    TICKET_REPLIED = "ticket_replied", "Ticket reply"
    TICKET_SOLVED = "ticket_solved", "Ticket solved"
    SURVEY_ANSWERED = "survey_answered", "Answered a survey"
    NOTE_ADDED = "note_added", "Note added"
    SEGMENT_ENTERED = "segment_entered", "Entered a segment"
    SEGMENT_LEFT = "segment_left", "Left a segment"
    RFM_GROUP_CHANGED = "rfm_group_changed", "RFM group changed"
    CUSTOMERS_MERGED = "customers_merged", "Duplicate merged in"
    CUSTOMERS_UNMERGED = "customers_unmerged", "Merge undone"
    DATA_ERASED = "data_erased", "Personal data erased"
    PROFILE_UPDATED = "profile_updated", "Profile updated"
    # Product-level (no customer): a stored product went from out of stock to in stock. Flows trigger on it.
    PRODUCT_BACK_IN_STOCK = "product_back_in_stock", "Product back in stock"


class Event(TenantModel):
    """Append-only log of everything that happened to a customer (or an anonymous visitor, until identified).

    The auto-increment id is the cursor flows read new events by (hence the (workspace, id) index).
    """

    workspace = workspace_key_without_plain_index(db_constraint=False)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    anonymous_id = models.CharField(max_length=64, blank=True, default="")
    type = models.CharField(max_length=40)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.CRM)
    external_id = models.CharField(max_length=150, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "source", "external_id"], name="event_unique_external")
        ]
        indexes = [
            # The timeline; with the type included, "did X in the last N days" checks a customer index-only.
            models.Index(
                fields=["workspace", "customer", "-occurred_at"], include=["type"], name="event_ws_customer_time"
            ),
            models.Index(fields=["workspace", "type", "occurred_at"], name="event_ws_type_time"),
            # Only what identifying a visitor looks up: their anonymous events (most events have a customer).
            models.Index(
                fields=["workspace", "anonymous_id"],
                name="event_ws_anonymous",
                condition=models.Q(customer__isnull=True) & ~models.Q(anonymous_id=""),
            ),
            models.Index(fields=["workspace", "id"], name="event_ws_id"),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class AuditRecord(TenantModel):
    """What was done to a customer's data that must stay explainable: merges, erasures, exports."""

    class Action(models.TextChoices):
        MERGE = "merge", "Merge"
        UNMERGE = "unmerge", "Undo merge"
        ERASE = "erase", "Erasure"
        EXPORT = "export", "Data export"

    action = models.CharField(max_length=20, choices=Action.choices)
    customer_id_ref = models.BigIntegerField(help_text="The customer concerned (kept even after erasure)")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "customer_id_ref"], name="audit_ws_customer")]


class ImportJob(TenantModel):
    """A CSV import: the uploaded file, the column mapping, progress and the rejected rows."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", "Customers"
        ORDERS = "orders", "Orders"

    class Status(models.TextChoices):
        MAPPING = "mapping", "Waiting for column mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.MAPPING)
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255, blank=True, default="")
    encoding = models.CharField(max_length=20, blank=True, default="")
    delimiter = models.CharField(max_length=1, blank=True, default="")
    mapping = models.JSONField(default=dict, blank=True)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    rejected_rows = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{"row": 3, "field": "email", "reason": "..."}]
    message = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    @property
    def percent(self) -> int:
        return int(100 * self.processed_rows / self.total_rows) if self.total_rows else 0
