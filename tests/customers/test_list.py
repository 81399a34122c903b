import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from customers.models import CustomerTag
from customers.selectors import CustomerFilters, customer_list
from tests.factories import CustomerFactory, CustomerTagFactory

pytestmark = pytest.mark.django_db


def url(workspace, suffix=""):
    return f"/w/{workspace.slug}/customers/{suffix}"


@pytest.fixture
def people(workspace):
    now = timezone.now()
    ann = CustomerFactory(
        workspace=workspace,
        first_name="Ann",
        last_name="Lee",
        email="ann.lee@example.org",
        phone="+14155550100",
        country="US",
        email_consent="subscribed",
        orders_count=3,
        total_spent=Decimal("300"),
        last_order_at=now - dt.timedelta(days=2),
        rfm_group="Champions",
    )
    bob = CustomerFactory(
        workspace=workspace,
        first_name="Bob",
        last_name="Stone",
        email="bob@stone.test",
        phone="+33612345678",
        country="FR",
        orders_count=1,
        total_spent=Decimal("40"),
        last_order_at=now - dt.timedelta(days=200),
        rfm_group="At risk",
    )
    cid = CustomerFactory(workspace=workspace, first_name="Cid", last_name="Moss", email="cid@moss.test", country="US")
    CustomerTagFactory(customer=ann, name="vip")
    return {"ann": ann, "bob": bob, "cid": cid}


def names(workspace, **filters):
    with scopes_disabled():
        return [c.first_name for c in customer_list(workspace=workspace, filters=CustomerFilters(**filters))]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"search": "ann"}, ["Ann"]),
        ({"search": "LEE"}, ["Ann"]),
        ({"search": "ann lee"}, ["Ann"]),
        ({"search": "stone.test"}, ["Bob"]),
        ({"search": "(415) 555-0100"}, ["Ann"]),
        ({"search": "06 12 34 56 78"}, []),  # national format of a French number: digits differ from E.164
        ({"search": "612345678"}, ["Bob"]),
        ({"search": "nobody"}, []),
        ({"tag": "vip"}, ["Ann"]),
        ({"country": "fr"}, ["Bob"]),
        ({"email_consent": "subscribed"}, ["Ann"]),
        ({"has_ordered": False}, ["Cid"]),
        ({"has_ordered": True, "sort": "name"}, ["Ann", "Bob"]),
        ({"spent_min": Decimal("50")}, ["Ann"]),
        ({"spent_max": Decimal("50"), "has_ordered": True}, ["Bob"]),
        ({"rfm_group": "At risk"}, ["Bob"]),
        ({"sort": "spent"}, ["Ann", "Bob", "Cid"]),
        ({"sort": "recent_order"}, ["Ann", "Bob", "Cid"]),
        ({"sort": "oldest_order"}, ["Bob", "Ann", "Cid"]),
    ],
)
def test_customer_list_filters(workspace, people, filters, expected):
    result = names(workspace, **filters)
    if "sort" in filters:
        assert result == expected
    else:
        assert sorted(result) == sorted(expected)


def test_last_order_range_uses_workspace_dates(workspace, people):
    today = timezone.now().date()
    assert names(workspace, last_order_from=today - dt.timedelta(days=10)) == ["Ann"]
    assert names(workspace, last_order_to=today - dt.timedelta(days=100)) == ["Bob"]


def test_merged_customers_are_hidden(workspace, people):
    with scopes_disabled():
        people["cid"].merged_into = people["ann"]
        people["cid"].save()
    assert "Cid" not in names(workspace)


def test_list_page_renders_and_htmx_gets_only_results(workspace, owner_client, people):
    response = owner_client.get(url(workspace), {"q": "ann"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" in body and 'id="customer-filters"' in body
    assert "ann.lee@example.org" in body and "bob@stone.test" not in body

    partial = owner_client.get(url(workspace), {"q": "bob"}, HTTP_HX_REQUEST="true")
    text = partial.content.decode()
    assert partial.status_code == 200
    assert "<html" not in text and 'id="customer-filters"' not in text
    assert text.lstrip().startswith('<div id="results"')
    assert "bob@stone.test" in text and "ann.lee@example.org" not in text
    assert "HX-Request" in partial["Vary"]


def test_list_paginates(workspace, owner_client):
    for index in range(55):
        CustomerFactory(workspace=workspace, first_name=f"P{index:02d}", last_name="Page")
    first = owner_client.get(url(workspace), {"sort": "name"}).content.decode()
    assert "55</span> customers" in first and "Page 1 of 2" in first
    second = owner_client.get(url(workspace), {"sort": "name", "page": 2}, HTTP_HX_REQUEST="true").content.decode()
    assert second.count("data-customer-id=") == 5


def test_invalid_filter_values_are_ignored(workspace, owner_client, people):
    response = owner_client.get(url(workspace), {"spent_min": "lots", "last_order_from": "yesterday", "sort": "x"})
    assert response.status_code == 200
    assert response.content.decode().count("data-customer-id=") == 3


def test_bulk_add_and_remove_tag_on_selected(workspace, owner_client, people):
    ids = [people["bob"].id, people["cid"].id]
    response = owner_client.post(
        url(workspace, "bulk/tag/"),
        {"action": "add", "tag_name": "winter", "customer_ids": ids},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "Tagged 2 customers" in response.content.decode()
    with scopes_disabled():
        assert set(CustomerTag.objects.filter(name="winter").values_list("customer_id", flat=True)) == set(ids)
    owner_client.post(url(workspace, "bulk/tag/"), {"action": "remove", "tag_name": "winter", "customer_ids": ids[:1]})
    with scopes_disabled():
        assert list(CustomerTag.objects.filter(name="winter").values_list("customer_id", flat=True)) == ids[1:]


def test_bulk_tag_all_matching_uses_the_filters(workspace, owner_client, people):
    owner_client.post(
        url(workspace, "bulk/tag/"), {"action": "add", "tag_name": "us", "apply_to_all": "1", "country": "US"}
    )
    with scopes_disabled():
        tagged = set(CustomerTag.objects.filter(name="us").values_list("customer_id", flat=True))
    assert tagged == {people["ann"].id, people["cid"].id}


def test_bulk_tag_ignores_other_workspaces_customers(workspace, other_workspace, owner_client, people):
    stranger = CustomerFactory(workspace=other_workspace)
    owner_client.post(url(workspace, "bulk/tag/"), {"action": "add", "tag_name": "x", "customer_ids": [stranger.id]})
    with scopes_disabled():
        assert not CustomerTag.objects.filter(customer=stranger).exists()


def test_viewer_cannot_bulk_tag(workspace, make_member_client, people):
    viewer = make_member_client(workspace, "viewer")
    response = viewer.post(
        url(workspace, "bulk/tag/"), {"action": "add", "tag_name": "x", "customer_ids": [people["bob"].id]}
    )
    assert response.status_code == 403
    with scopes_disabled():
        assert not CustomerTag.objects.filter(name="x").exists()


def test_csv_export_is_filtered_and_safe_against_formula_injection(workspace, owner_client, people):
    CustomerFactory(
        workspace=workspace,
        first_name='=HYPERLINK("http://evil")',
        last_name="@SUM(A1)",
        email="evil@example.org",
        country="US",
    )
    CustomerTagFactory(customer=people["ann"], name="-1+1")
    response = owner_client.get(url(workspace, "export.csv"), {"country": "US", "sort": "name"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert {row["email"] for row in rows} == {"ann.lee@example.org", "cid@moss.test", "evil@example.org"}
    evil = next(row for row in rows if row["email"] == "evil@example.org")
    assert evil["first_name"] == '\'=HYPERLINK("http://evil")'
    assert evil["last_name"] == "'@SUM(A1)"
    ann = next(row for row in rows if row["email"] == "ann.lee@example.org")
    assert ann["phone"] == "'+14155550100"
    assert ann["tags"] == "'-1+1;vip"


def test_support_role_cannot_export(workspace, make_member_client, people):
    support = make_member_client(workspace, "support")
    assert support.get(url(workspace, "export.csv")).status_code == 403


def test_cannot_access_other_workspace_customer_list(workspace, other_workspace, owner_client):
    CustomerFactory(workspace=other_workspace, email="secret@globex.test")
    response = owner_client.get(url(workspace))
    assert "secret@globex.test" not in response.content.decode()
    assert owner_client.get(url(other_workspace)).status_code == 404


def test_bulk_tag_rerenders_the_same_filtered_page(workspace, owner_client, people):
    response = owner_client.post(
        url(workspace, "bulk/tag/"),
        {"action": "add", "tag_name": "fr", "customer_ids": [people["bob"].id], "country": "FR", "sort": "name"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert body.count("data-customer-id=") == 1 and "bob@stone.test" in body
    assert '<input type="hidden" name="country" value="FR">' in body
    assert "export.csv?country=FR&amp;sort=name" in body


def test_counts_stop_at_the_cap(workspace, owner_client, people, monkeypatch):
    from customers import views

    monkeypatch.setattr(views, "COUNT_CAP", 2)
    body = owner_client.get(url(workspace), HTTP_HX_REQUEST="true").content.decode()
    assert '<span class="fw-semibold" data-testid="result-count">2+</span>' in body
    assert body.count("data-customer-id=") == 3


def test_tag_filter_for_widely_used_tags(workspace, people, monkeypatch):
    from customers import selectors

    CustomerTagFactory(customer=people["bob"], name="vip")
    monkeypatch.setattr(selectors, "SELECTIVE_TAG_LIMIT", 1)  # forces the EXISTS path
    assert sorted(names(workspace, tag="vip")) == ["Ann", "Bob"]


def test_bulk_tag_all_matching_beyond_one_batch(workspace, owner_client):
    from customers.models import Customer
    from customers.services import BATCH_SIZE

    with scopes_disabled():
        Customer.objects.bulk_create(
            [
                Customer(workspace=workspace, external_id=f"many-{i}", email=f"m{i}@example.org")
                for i in range(BATCH_SIZE + 5)
            ]
        )
    response = owner_client.post(url(workspace, "bulk/tag/"), {"action": "add", "tag_name": "all", "apply_to_all": "1"})
    assert response.status_code == 302
    with scopes_disabled():
        assert CustomerTag.objects.filter(name="all").count() == BATCH_SIZE + 5


def test_broad_search_uses_the_plain_filter(workspace, people, monkeypatch):
    from customers import selectors

    monkeypatch.setattr(selectors, "SELECTIVE_SEARCH_LIMIT", 1)
    assert sorted(names(workspace, search="example")) == ["Ann"]
    assert sorted(names(workspace, search=".test")) == ["Bob", "Cid"]
