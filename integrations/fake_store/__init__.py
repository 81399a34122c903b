"""A local fake Shopify and WooCommerce, for tests and ``manage.py fake_store``."""

from integrations.fake_store.data import FakeCatalogue, generate
from integrations.fake_store.server import FakeShopify, FakeWooCommerce

__all__ = ["FakeCatalogue", "FakeShopify", "FakeWooCommerce", "generate"]
