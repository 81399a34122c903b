"""Store connections and everything that moves data in from them.

Secrets (API credentials, webhook secrets) are stored encrypted (``integrations.crypto``); the model only exposes
them through the helpers below, never as plain columns.
"""

import secrets

from django.db import models
from django.utils import timezone

from crm.models import TenantModel
from integrations import crypto


def webhook_token() -> str:
    return secrets.token_urlsafe(24)


def tracking_public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


class Platform(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"


class ConnectionStatus(models.TextChoices):
    NEW = "new", "Not checked yet"
    CONNECTED = "connected", "Connected"
    FAILING = "failing", "Failing"
    UNINSTALLED = "uninstalled", "App uninstalled"


class StoreConnection(TenantModel):
    platform = models.CharField(max_length=20, choices=Platform.choices)
    name = models.CharField(max_length=120)
    # Shopify: the shop's https://<shop>.myshopify.com address; WooCommerce: the site's root URL.
    base_url = models.URLField(max_length=300)
    credentials_encrypted = models.TextField(blank=True, default="")
    webhook_secret_encrypted = models.TextField(blank=True, default="")
    # While a secret is rotated the previous one is still accepted until this time.
    previous_webhook_secret_encrypted = models.TextField(blank=True, default="")
    previous_webhook_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # The unguessable part of this connection's webhook URL (/hooks/<platform>/<token>/).
    webhook_token = models.CharField(max_length=64, unique=True, default=webhook_token)
    status = models.CharField(max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.NEW)
    is_paused = models.BooleanField(default=False)
    sync_interval_minutes = models.PositiveIntegerField(default=15)
    # Per resource high-water mark of the store's updated_at already imported: {"orders": "2026-...Z", ...}.
    sync_state = models.JSONField(default=dict, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_webhook_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "platform", "base_url"], name="connection_unique_store")
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} · {self.name}"

    @property
    def source(self) -> str:
        return self.platform  # customers.Source uses the same values

    def credentials(self) -> dict:
        return crypto.decrypt_json(self.credentials_encrypted)

    def set_credentials(self, values: dict) -> None:
        self.credentials_encrypted = crypto.encrypt_json(values)

    def webhook_secrets(self) -> list[str]:
        """Secrets a delivery may be signed with: the current one, and the previous one during a rotation."""
        found = [crypto.decrypt_text(self.webhook_secret_encrypted)]
        if (
            self.previous_webhook_secret_encrypted
            and self.previous_webhook_secret_expires_at
            and self.previous_webhook_secret_expires_at > timezone.now()
        ):
            found.append(crypto.decrypt_text(self.previous_webhook_secret_encrypted))
        return [secret for secret in found if secret]

    @property
    def is_active(self) -> bool:
        return not self.is_paused and self.status != ConnectionStatus.UNINSTALLED


class SyncKind(models.TextChoices):
    FULL = "full", "Full backfill"
    INCREMENTAL = "incremental", "Incremental"
    RECONCILE = "reconcile", "Reconciliation"


class SyncStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Waiting to retry"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SyncRun(TenantModel):
    """One sync (or reconciliation) of one connection. ``cursor`` is where to resume: the resource being read and the
    page cursor / page number inside it, saved after every page that landed."""

    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=20, choices=SyncKind.choices)
    status = models.CharField(max_length=20, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    cursor = models.JSONField(default=dict, blank=True)
    # {"customers": {"created": 3, "updated": 1, "skipped": 0, "failed": 0}, ...}
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)  # [{"resource", "external_id", "reason"}], capped
    details = models.JSONField(default=dict, blank=True)  # reconciliation: the per-day comparison
    pages_done = models.PositiveIntegerField(default=0)
    pages_expected = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)  # a RETRYING run resumes (from its cursor) after this
    message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Touched by every page that lands: a RUNNING run silent for long has lost its worker and is resumed.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "connection", "-created_at"], name="syncrun_ws_connection")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_running(self) -> bool:
        return self.status in (SyncStatus.QUEUED, SyncStatus.RUNNING, SyncStatus.RETRYING)

    @property
    def percent(self) -> int:
        if self.status == SyncStatus.DONE:
            return 100
        if not self.pages_expected:
            return 0
        return min(99, int(100 * self.pages_done / self.pages_expected))

    @property
    def records_total(self) -> int:
        return sum(
            values.get("created", 0) + values.get("updated", 0) + values.get("skipped", 0)
            for values in self.counts.values()
        )

    @property
    def failed_total(self) -> int:
        return sum(values.get("failed", 0) for values in self.counts.values())


class WebhookDelivery(TenantModel):
    """A received, verified webhook. The unique key makes a replayed delivery a no-op."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(StoreConnection, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=150)
    topic = models.CharField(max_length=80)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    message = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "connection", "delivery_id"], name="webhook_delivery_unique")
        ]
        indexes = [models.Index(fields=["workspace", "connection", "-received_at"], name="webhook_ws_received")]


class StorefrontTracking(TenantModel):
    """The workspace's storefront tracking settings: the public key the snippet sends and where it may run."""

    public_key = models.CharField(max_length=64, unique=True, default=tracking_public_key)
    # Origins allowed to send events (CORS), one per line, e.g. https://shop.example.com. Empty = any origin.
    allowed_origins = models.TextField(blank=True, default="")
    is_enabled = models.BooleanField(default=True)
    abandoned_cart_delay_minutes = models.PositiveIntegerField(default=60)
    events_received = models.PositiveBigIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace"], name="tracking_one_per_workspace")]

    def origins(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.allowed_origins.splitlines() if line.strip()]
