"""The Integrations page: add, check, pause, remove a connection, the health panel and the sync progress bar."""

import pytest
from django.test import TestCase
from django.urls import reverse
from django_scopes import scope

from customers.models import Order
from integrations import crypto
from integrations.models import StoreConnection, SyncRun
from tests.integrations.factories import StoreConnectionFactory, SyncRunFactory


def url(name, workspace, **kwargs):
    return reverse(f"integrations:{name}", kwargs={"workspace_slug": workspace.slug, **kwargs})


def test_page_shows_connections_snippet_and_form(owner_client, workspace):
    StoreConnectionFactory(workspace=workspace, name="Main Shopify")

    response = owner_client.get(url("list", workspace))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Main Shopify" in body
    assert "/tracker.js" in body and 'data-copy="#tracking-snippet"' in body
    assert "Connect and check" in body


def test_add_connection_checks_it_and_runs_the_first_full_sync(owner_client, workspace, fake_shopify, catalogue):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = owner_client.post(
            url("connection_add", workspace),
            {
                "platform": "shopify",
                "name": "Demo shop",
                "address": fake_shopify.url,
                "access_token": fake_shopify.access_token,
                "webhook_secret": "s3cret",
            },
        )

    with scope(workspace=workspace):
        connection = StoreConnection.objects.get()
        assert response.status_code == 302
        assert response["Location"] == url("connection", workspace, connection_id=connection.pk)
        assert connection.status == "connected"
        # the token is stored encrypted, never in clear
        assert fake_shopify.access_token not in connection.credentials_encrypted
        assert crypto.decrypt_json(connection.credentials_encrypted) == {"access_token": fake_shopify.access_token}
        assert Order.objects.filter(source="shopify").count() == len(catalogue.orders)
        assert SyncRun.objects.get().status == "done"

    page = owner_client.get(response["Location"]).content.decode()
    assert "Healthy" in page
    assert 'aria-valuenow="100"' in page


def test_add_with_a_wrong_token_saves_and_says_what_failed(owner_client, workspace, fake_shopify):
    response = owner_client.post(
        url("connection_add", workspace),
        {"platform": "shopify", "address": fake_shopify.url, "access_token": "wrong"},
        follow=True,
    )

    body = response.content.decode()
    assert "the check failed: Shopify refused the access token" in body
    with scope(workspace=workspace):
        assert StoreConnection.objects.get().status == "failing"
        assert not SyncRun.objects.exists()


def test_add_without_credentials_is_a_form_error(owner_client, workspace):
    response = owner_client.post(
        url("connection_add", workspace), {"platform": "woocommerce", "address": "https://shop.example.com"}
    )

    assert response.status_code == 400
    assert "needs the consumer key and the consumer secret" in response.content.decode()


def test_local_addresses_are_refused_unless_allowed(owner_client, workspace, settings):
    settings.INTEGRATIONS_ALLOW_LOCAL_STORES = False

    response = owner_client.post(
        url("connection_add", workspace),
        {"platform": "shopify", "address": "http://127.0.0.1:6379", "access_token": "x"},
    )

    assert response.status_code == 400
    assert "Local and private network addresses cannot be connected." in response.content.decode()


def test_check_connection_with_htmx_returns_the_partial(owner_client, workspace, shopify_connection):
    response = owner_client.post(
        url("connection_check", workspace, connection_id=shopify_connection.pk), HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'data-testid="check-result"' in body
    assert "Connected: Fake Outdoor Shop answered" in body


def test_check_of_an_unreachable_store_in_plain_words(owner_client, workspace):
    connection = StoreConnectionFactory(workspace=workspace, base_url="http://127.0.0.1:9")

    response = owner_client.post(url("connection_check", workspace, connection_id=connection.pk), follow=True)

    assert "Could not reach http://127.0.0.1:9: is the address right and the store online?" in response.content.decode()


def test_pause_and_remove(owner_client, workspace):
    connection = StoreConnectionFactory(workspace=workspace)

    owner_client.post(url("connection_pause", workspace, connection_id=connection.pk), {"is_paused": "1"})
    connection.refresh_from_db()
    assert connection.is_paused is True

    owner_client.post(url("connection_remove", workspace, connection_id=connection.pk))
    with scope(workspace=workspace):
        assert not StoreConnection.objects.exists()


@pytest.mark.parametrize("role", ["marketer", "support", "viewer"])
def test_members_without_the_capability_cannot_change_connections(make_member_client, workspace, role):
    client = make_member_client(workspace, role)
    connection = StoreConnectionFactory(workspace=workspace)

    responses = [
        client.post(
            url("connection_add", workspace), {"platform": "shopify", "address": "x.myshopify.com", "access_token": "t"}
        ),
        client.post(url("connection_pause", workspace, connection_id=connection.pk), {"is_paused": "1"}),
        client.post(url("connection_remove", workspace, connection_id=connection.pk)),
        client.post(url("connection_sync", workspace, connection_id=connection.pk)),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    with scope(workspace=workspace):
        assert list(StoreConnection.objects.values_list("is_paused", flat=True)) == [False]
        assert not SyncRun.objects.exists()
    assert client.get(url("list", workspace)).status_code == 200  # reading is fine
    assert "Connect and check" not in client.get(url("list", workspace)).content.decode()


def test_progress_partial_polls_while_running(owner_client, workspace):
    run = SyncRunFactory(
        connection__workspace=workspace,
        status="running",
        pages_done=3,
        pages_expected=12,
        counts={"orders": {"created": 250, "updated": 0, "skipped": 0, "failed": 0}},
    )

    response = owner_client.get(
        url("run_progress", workspace, connection_id=run.connection_id, run_id=run.pk), HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert "<html" not in body
    assert 'hx-trigger="every 1s"' in body
    assert "3 / 12 pages · 25%" in body
    assert "250 new" in body


def test_cannot_access_other_workspace_connection(owner_client, workspace, other_workspace):
    foreign = StoreConnectionFactory(workspace=other_workspace)
    foreign_run = SyncRunFactory(connection=foreign)

    responses = [
        owner_client.get(url("connection", workspace, connection_id=foreign.pk)),
        owner_client.post(url("connection_pause", workspace, connection_id=foreign.pk), {"is_paused": "1"}),
        owner_client.post(url("connection_remove", workspace, connection_id=foreign.pk)),
        owner_client.get(url("run_progress", workspace, connection_id=foreign.pk, run_id=foreign_run.pk)),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    foreign.refresh_from_db()
    assert foreign.is_paused is False


def test_tracking_settings_validate_origins(owner_client, workspace):
    response = owner_client.post(
        url("tracking_update", workspace),
        {"allowed_origins": "shop.example.com/path", "abandoned_cart_delay_minutes": 60, "is_enabled": "on"},
        follow=True,
    )

    assert "is not an origin: write it like https://shop.example.com" in response.content.decode()


def test_customer_card_shows_store_link_and_storefront_activity(rf, workspace, owner):
    from django.template.loader import render_to_string

    from tests.factories import CustomerFactory, EventFactory

    StoreConnectionFactory(workspace=workspace, name="Main shop", base_url="https://main.myshopify.com")
    customer = CustomerFactory(workspace=workspace, source="shopify", external_id="7001")
    for kind in ["page_viewed", "page_viewed", "product_viewed"]:
        EventFactory(workspace=workspace, customer=customer, type=kind, source="tracking")
    request = rf.get("/")
    request.workspace = workspace

    with scope(workspace=workspace):
        html = render_to_string("integrations/_customer_card.html", {"customer": customer, "request": request})

    assert 'href="https://main.myshopify.com/admin/customers/7001"' in html
    assert "2 page views" in html and "1 product views" in html
    assert "Last seen on the storefront" in html


def test_list_shows_a_live_progress_bar_while_a_sync_runs(owner_client, workspace):
    run = SyncRunFactory(connection__workspace=workspace, status="running", pages_done=1, pages_expected=4)

    body = owner_client.get(url("list", workspace)).content.decode()

    progress_url = url("run_progress", workspace, connection_id=run.connection_id, run_id=run.pk)
    assert f'hx-get="{progress_url}"' in body
    assert "1 / 4 pages · 25%" in body
