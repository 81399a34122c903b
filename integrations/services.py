"""Writes of the integrations app: store connections (add, check, pause, remove, rotate the webhook secret) and the
storefront tracking settings. Syncs live in ``integrations.sync``, webhooks in ``integrations.webhooks``,
reconciliation in ``integrations.reconciliation``, tracking ingestion in ``integrations.tracking``."""

import datetime as dt
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlparse

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.exceptions import DomainError
from crm.models import Workspace
from integrations import crypto
from integrations.connectors import ConnectorError, connector_for
from integrations.models import ConnectionStatus, Platform, StoreConnection, StorefrontTracking, tracking_public_key
from integrations.tracking import tracking_forget_key

SECRET_ROTATION_GRACE = dt.timedelta(hours=24)


def _allow_local_stores() -> bool:
    return bool(getattr(settings, "INTEGRATIONS_ALLOW_LOCAL_STORES", settings.DEBUG))


def store_url_normalise(*, platform: str, address: str) -> str:
    """Turn what the merchant typed (``acme``, ``acme.myshopify.com``, ``https://shop.example.com/``) into the base
    URL the connector calls. Addresses inside this machine's network are refused unless
    INTEGRATIONS_ALLOW_LOCAL_STORES is on (the fake store in development), so a connection cannot probe it."""
    text = (address or "").strip().rstrip("/")
    if not text:
        raise DomainError("Enter the store's address.", field="address")
    if platform == Platform.SHOPIFY and "." not in text and ":" not in text:
        text = f"{text}.myshopify.com"
    if "://" not in text:
        text = f"https://{text}"
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DomainError("That does not look like a web address.", field="address")
    host = parsed.hostname
    is_local = host == "localhost"
    try:
        is_local = is_local or not ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    if is_local and not _allow_local_stores():
        raise DomainError("Local and private network addresses cannot be connected.", field="address")
    if parsed.scheme == "http" and not is_local:
        raise DomainError("The store must be reached over https://.", field="address")
    path = parsed.path.rstrip("/")
    if platform == Platform.SHOPIFY:
        path = ""  # the Admin API lives at the shop's root
    return f"{parsed.scheme}://{parsed.netloc}{path}"


@transaction.atomic
def connection_create(
    *,
    workspace: Workspace,
    platform: str,
    name: str,
    address: str,
    access_token: str = "",
    consumer_key: str = "",
    consumer_secret: str = "",
    webhook_secret: str = "",
) -> StoreConnection:
    if platform not in Platform.values:
        raise DomainError("Choose Shopify or WooCommerce.", field="platform")
    base_url = store_url_normalise(platform=platform, address=address)
    if platform == Platform.SHOPIFY:
        if not access_token.strip():
            raise DomainError("A Shopify connection needs the Admin API access token.", field="access_token")
        credentials = {"access_token": access_token.strip()}
    else:
        if not consumer_key.strip() or not consumer_secret.strip():
            raise DomainError(
                "A WooCommerce connection needs the consumer key and the consumer secret.", field="consumer_key"
            )
        credentials = {"consumer_key": consumer_key.strip(), "consumer_secret": consumer_secret.strip()}
    connection = StoreConnection(
        workspace=workspace,
        platform=platform,
        name=name.strip() or urlparse(base_url).hostname or "Store",
        base_url=base_url,
        webhook_secret_encrypted=crypto.encrypt_text(webhook_secret.strip()),
    )
    connection.set_credentials(credentials)
    try:
        with transaction.atomic():
            connection.save()
    except IntegrityError as error:
        raise DomainError("This store is already connected to the workspace.", field="address") from error
    return connection


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    is_ok: bool
    message: str


def connection_check(*, workspace: Workspace, connection: StoreConnection) -> CheckResult:
    """Call the store's API once and say in plain words whether it worked and, if not, what to fix."""
    try:
        connector = connector_for(connection, timeout=10.0)
        try:
            shop_name = connector.check()
        finally:
            connector.close()
    except (ConnectorError, DomainError) as error:
        connection_record_error(workspace=workspace, connection=connection, message=error.message)
        return CheckResult(is_ok=False, message=error.message)
    now = timezone.now()
    fields = {"last_checked_at": now, "last_error": "", "updated_at": now}
    if connection.status != ConnectionStatus.UNINSTALLED:
        fields["status"] = ConnectionStatus.CONNECTED
    StoreConnection.objects.filter(workspace=workspace, pk=connection.pk).update(**fields)
    for name, value in fields.items():
        setattr(connection, name, value)
    return CheckResult(is_ok=True, message=f"Connected: {shop_name} answered at {connection.base_url}.")


def connection_record_error(*, workspace: Workspace, connection: StoreConnection, message: str) -> None:
    now = timezone.now()
    fields = {"last_error": message[:2000], "last_error_at": now, "last_checked_at": now, "updated_at": now}
    if connection.status != ConnectionStatus.UNINSTALLED:
        fields["status"] = ConnectionStatus.FAILING
    StoreConnection.objects.filter(workspace=workspace, pk=connection.pk).update(**fields)
    for name, value in fields.items():
        setattr(connection, name, value)


def connection_set_paused(*, workspace: Workspace, connection: StoreConnection, is_paused: bool) -> StoreConnection:
    connection.is_paused = is_paused
    connection.save(update_fields=["is_paused", "updated_at"])
    return connection


def connection_remove(*, workspace: Workspace, connection: StoreConnection) -> None:
    """Forget the connection, its runs and deliveries. Imported customers and orders stay: they are the workspace's."""
    StoreConnection.objects.filter(workspace=workspace, pk=connection.pk).delete()


def connection_rotate_webhook_secret(
    *, workspace: Workspace, connection: StoreConnection, new_secret: str
) -> StoreConnection:
    """Deliveries signed with the old secret keep being accepted for a day while the store switches over."""
    if not new_secret.strip():
        raise DomainError("Enter the new webhook secret.", field="webhook_secret")
    connection.previous_webhook_secret_encrypted = connection.webhook_secret_encrypted
    connection.previous_webhook_secret_expires_at = timezone.now() + SECRET_ROTATION_GRACE
    connection.webhook_secret_encrypted = crypto.encrypt_text(new_secret.strip())
    connection.save(
        update_fields=[
            "previous_webhook_secret_encrypted",
            "previous_webhook_secret_expires_at",
            "webhook_secret_encrypted",
            "updated_at",
        ]
    )
    return connection


def connection_mark_uninstalled(*, workspace: Workspace, connection: StoreConnection) -> None:
    StoreConnection.objects.filter(workspace=workspace, pk=connection.pk).update(
        status=ConnectionStatus.UNINSTALLED,
        is_paused=True,
        updated_at=timezone.now(),
        last_error="The app was uninstalled from the store: data no longer flows in.",
        last_error_at=timezone.now(),
    )


def secrets_reencrypt(*, workspace: Workspace) -> int:
    """After a new Fernet key is prepended to FERNET_KEYS, re-encrypt every stored secret with it."""
    count = 0
    for connection in StoreConnection.objects.filter(workspace=workspace):
        connection.credentials_encrypted = crypto.rotate_token(connection.credentials_encrypted)
        connection.webhook_secret_encrypted = crypto.rotate_token(connection.webhook_secret_encrypted)
        connection.previous_webhook_secret_encrypted = crypto.rotate_token(connection.previous_webhook_secret_encrypted)
        connection.save(
            update_fields=["credentials_encrypted", "webhook_secret_encrypted", "previous_webhook_secret_encrypted"]
        )
        count += 1
    return count


# --- storefront tracking settings ------------------------------------------------------------------------------


def tracking_get_or_create(*, workspace: Workspace) -> StorefrontTracking:
    tracking, _ = StorefrontTracking.objects.get_or_create(workspace=workspace)
    return tracking


def tracking_update(
    *, workspace: Workspace, allowed_origins: str, abandoned_cart_delay_minutes: int, is_enabled: bool
) -> StorefrontTracking:
    origins = []
    for line in allowed_origins.splitlines():
        line = line.strip().rstrip("/")
        if not line:
            continue
        parsed = urlparse(line)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path:
            raise DomainError(
                f"{line!r} is not an origin: write it like https://shop.example.com", field="allowed_origins"
            )
        origins.append(f"{parsed.scheme}://{parsed.netloc}")
    if not 5 <= abandoned_cart_delay_minutes <= 7 * 24 * 60:
        raise DomainError(
            "The abandoned-cart delay must be between 5 minutes and 7 days.", field="abandoned_cart_delay_minutes"
        )
    tracking = tracking_get_or_create(workspace=workspace)
    tracking.allowed_origins = "\n".join(origins)
    tracking.abandoned_cart_delay_minutes = abandoned_cart_delay_minutes
    tracking.is_enabled = is_enabled
    tracking.save(update_fields=["allowed_origins", "abandoned_cart_delay_minutes", "is_enabled"])
    tracking_forget_key(tracking.public_key)
    return tracking


def tracking_rotate_key(*, workspace: Workspace) -> StorefrontTracking:
    tracking = tracking_get_or_create(workspace=workspace)
    old_key = tracking.public_key
    tracking.public_key = tracking_public_key()
    tracking.save(update_fields=["public_key"])
    tracking_forget_key(old_key)
    return tracking
