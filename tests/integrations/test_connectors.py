"""The connectors against the local fake Shopify and WooCommerce: payload shapes, pagination, throttling, failures."""

import datetime as dt
from decimal import Decimal

import pytest

from integrations.connectors import ConnectorError
from integrations.connectors.shopify import ShopifyConnector
from integrations.connectors.woocommerce import WooCommerceConnector
from integrations.fake_store import FakeShopify


def shopify(server, **options):
    return ShopifyConnector(base_url=server.url, access_token=server.access_token, **options)


def woo(server):
    return WooCommerceConnector(
        base_url=server.url, consumer_key=server.consumer_key, consumer_secret=server.consumer_secret
    )


def test_shopify_order_page_maps_graphql_shape(fake_shopify, catalogue):
    page = shopify(fake_shopify).fetch_page("orders", cursor=None, since=None)

    first = min(catalogue.orders, key=lambda o: (o.updated_at, o.id))
    record = page.records[0]
    assert record.external_id == str(first.id)  # the numeric tail of gid://shopify/Order/<id>
    assert record.number == f"#{first.number}"
    assert record.customer_external_id == str(first.customer_id)
    assert record.total == first.total
    assert record.placed_at == first.created_at
    assert [(line.sku, line.quantity, line.unit_price) for line in record.lines] == [
        (line.sku, line.quantity, line.price) for line in first.lines
    ]
    request = fake_shopify.requests[-1]
    assert request["path"] == "/admin/api/2025-01/graphql.json"
    assert "pageInfo { hasNextPage endCursor }" in request["body"]["query"]


def test_shopify_cursor_pagination_reads_every_order_once(fake_shopify, catalogue):
    connector = shopify(fake_shopify)
    seen, cursor, pages = [], None, 0
    while True:
        page = connector.fetch_page("orders", cursor=cursor, since=None)
        seen += [r.external_id for r in page.records]
        pages += 1
        if not page.next_cursor:
            break
        cursor = page.next_cursor

    assert pages == 3  # 230 orders, 100 a page
    assert sorted(seen) == sorted(str(o.id) for o in catalogue.orders)
    assert fake_shopify.requests[1]["body"]["variables"]["after"] is not None


def test_shopify_incremental_asks_for_updated_since(fake_shopify, catalogue):
    since = sorted(o.updated_at for o in catalogue.orders)[-10]

    page = shopify(fake_shopify).fetch_page("orders", cursor=None, since=since)

    assert len(page.records) == 9
    assert fake_shopify.requests[-1]["body"]["variables"]["query"] == (
        f"updated_at:>'{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    )


def test_shopify_429_waits_retry_after_then_continues(fake_shopify):
    fake_shopify.inject(429, retry_after=0.3)
    connector = shopify(fake_shopify)

    page = connector.fetch_page("customers", cursor=None, since=None)

    assert len(page.records) == 30
    assert connector.http.waits == [0.3]
    assert [r["status"] for r in fake_shopify.requests] == [429, 200]


def test_shopify_500_is_retried_with_backoff(fake_shopify):
    fake_shopify.inject(500, times=2)
    connector = shopify(fake_shopify)

    page = connector.fetch_page("products", cursor=None, since=None)

    assert len(page.records) == 8
    assert [r["status"] for r in fake_shopify.requests] == [500, 500, 200]
    assert connector.http.waits[1] > connector.http.waits[0]  # exponential


def test_shopify_cost_throttle_waits_for_the_bucket(catalogue):
    # A bucket of 150 points restoring 500/s: the second 102-point query is THROTTLED and retried after a pause.
    with FakeShopify(catalogue, bucket_size=150, restore_rate=500) as server:
        connector = shopify(server)
        connector.fetch_page("orders", cursor=None, since=None)
        page = connector.fetch_page("orders", cursor=None, since=None)

    assert len(page.records) == 100
    assert connector.http.waits and all(0 < wait < 1 for wait in connector.http.waits)


def test_shopify_bad_token_is_a_plain_message(fake_shopify):
    connector = ShopifyConnector(base_url=fake_shopify.url, access_token="wrong")

    with pytest.raises(ConnectorError) as error:
        connector.check()

    assert error.value.is_transient is False
    assert "Shopify refused the access token" in error.value.message


def test_unreachable_store_says_so():
    connector = ShopifyConnector(base_url="http://127.0.0.1:9", access_token="x")

    with pytest.raises(ConnectorError) as error:
        connector.check()

    assert error.value.message.startswith("Could not reach http://127.0.0.1:9")
    assert error.value.is_transient


def test_woocommerce_pages_and_headers(fake_woo, catalogue):
    connector = woo(fake_woo)

    first = connector.fetch_page("orders", cursor=None, since=None)
    third = connector.fetch_page("orders", cursor="3", since=None)

    assert (first.total_pages, first.next_cursor, len(first.records)) == (3, "2", 100)
    assert (third.next_cursor, len(third.records)) == (None, 30)
    params = fake_woo.requests[0]["params"]
    assert params == {"orderby": ["id"], "order": ["asc"], "per_page": ["100"], "page": ["1"]}


def test_woocommerce_order_shape(fake_woo, catalogue):
    order = min(catalogue.orders, key=lambda o: o.id)

    record = woo(fake_woo).fetch_page("orders", cursor=None, since=None).records[0]

    assert record.external_id == str(order.id)
    assert record.number == str(order.number)
    assert record.total == order.total
    assert record.email == order.email
    assert record.placed_at == order.created_at


def test_woocommerce_incremental_uses_modified_after_gmt(fake_woo, catalogue):
    since = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    woo(fake_woo).fetch_page("products", cursor=None, since=since)

    params = fake_woo.requests[-1]["params"]
    assert params["modified_after"] == ["2000-01-01T00:00:00"]
    assert params["dates_are_gmt"] == ["true"]


def test_woocommerce_refund_and_cancel(fake_woo, catalogue):
    refunded = next(o for o in catalogue.orders if o.refunded and not o.cancelled_at)
    records = []
    for page in ("1", "2", "3"):
        records += woo(fake_woo).fetch_page("orders", cursor=page, since=None).records
    record = next(r for r in records if r.external_id == str(refunded.id))

    assert record.refunded_total == refunded.refunded
    assert record.financial_status == "partially_refunded"
    assert Decimal(record.total) == refunded.total


def test_woocommerce_bad_keys(fake_woo):
    connector = WooCommerceConnector(base_url=fake_woo.url, consumer_key="ck_no", consumer_secret="cs_no")

    with pytest.raises(ConnectorError) as error:
        connector.check()

    assert "WooCommerce refused the consumer key and secret" in error.value.message
