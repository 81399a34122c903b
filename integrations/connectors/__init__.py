"""Store connectors. ``connector_for`` builds the right client for a connection from its decrypted credentials."""

from typing import Any

from integrations.connectors.base import ConnectorError, Page, RecordError
from integrations.connectors.shopify import ShopifyConnector
from integrations.connectors.woocommerce import WooCommerceConnector

__all__ = ["ConnectorError", "Page", "RecordError", "connector_for"]


def connector_for(connection: Any, **client_options: Any) -> ShopifyConnector | WooCommerceConnector:
    credentials = connection.credentials()
    if connection.platform == "shopify":
        return ShopifyConnector(
            base_url=connection.base_url, access_token=credentials.get("access_token", ""), **client_options
        )
    if connection.platform == "woocommerce":
        return WooCommerceConnector(
            base_url=connection.base_url,
            consumer_key=credentials.get("consumer_key", ""),
            consumer_secret=credentials.get("consumer_secret", ""),
            **client_options,
        )
    raise ConnectorError(f"Unknown platform {connection.platform!r}", is_transient=False)
