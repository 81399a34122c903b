import pytest
from django_scopes import scope

from integrations import services
from integrations.fake_store import FakeShopify, FakeWooCommerce, generate


@pytest.fixture(autouse=True)
def _integration_settings(settings):
    settings.INTEGRATIONS_ALLOW_LOCAL_STORES = True
    settings.INTEGRATIONS_BACKOFF_SECONDS = 0.01
    settings.INTEGRATIONS_HTTP_ATTEMPTS = 3


@pytest.fixture
def catalogue():
    return generate(seed=11, customers=30, products=8, orders=230, checkouts=5, days=20)


@pytest.fixture
def fake_shopify(catalogue):
    with FakeShopify(catalogue, bucket_size=100_000, restore_rate=10_000) as server:
        yield server


@pytest.fixture
def fake_woo(catalogue):
    with FakeWooCommerce(catalogue) as server:
        yield server


WEBHOOK_SECRET = "whsec-test-123"


@pytest.fixture
def shopify_connection(workspace, fake_shopify):
    with scope(workspace=workspace):
        return services.connection_create(
            workspace=workspace,
            platform="shopify",
            name="Fake Shopify",
            address=fake_shopify.url,
            access_token=fake_shopify.access_token,
            webhook_secret=WEBHOOK_SECRET,
        )


@pytest.fixture
def woo_connection(workspace, fake_woo):
    with scope(workspace=workspace):
        return services.connection_create(
            workspace=workspace,
            platform="woocommerce",
            name="Fake Woo",
            address=fake_woo.url,
            consumer_key=fake_woo.consumer_key,
            consumer_secret=fake_woo.consumer_secret,
            webhook_secret=WEBHOOK_SECRET,
        )
