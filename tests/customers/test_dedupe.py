import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from customers import dedupe
from customers.demo import seed_duplicates
from customers.models import AuditRecord, Cart, Customer, CustomerTag, Event, EventType, Note, Order, OrderLine
from customers.records import CustomerRecord, OrderRecord
from customers.services import customer_stats_refresh, customer_upsert, customers_bulk_upsert, orders_bulk_upsert
from tests.factories import (
    CartFactory,
    CustomerFactory,
    CustomerTagFactory,
    EventFactory,
    NoteFactory,
    OrderFactory,
    OrderLineFactory,
)

pytestmark = pytest.mark.django_db


def test_finds_duplicates_by_email_phone_and_name_postcode_with_reasons(workspace):
    a = CustomerFactory(workspace=workspace, email="ann@example.org", first_name="Ann", last_name="Lee")
    b = CustomerFactory(workspace=workspace, email="ANN@example.org ", first_name="Annie", last_name="Lee")
    c = CustomerFactory(workspace=workspace, email="c1@example.org", phone="+14155550100")
    d = CustomerFactory(workspace=workspace, email="c2@example.org", phone="+14155550100")
    e = CustomerFactory(
        workspace=workspace, email="e1@example.org", first_name="Eve", last_name="Park", postcode="SW1A 1AA"
    )
    f = CustomerFactory(
        workspace=workspace, email="e2@example.org", first_name="eve", last_name="PARK", postcode="sw1a1aa"
    )
    CustomerFactory(workspace=workspace, email="lonely@example.org", phone="+14155550199")
    merged = CustomerFactory(workspace=workspace, email="c3@example.org", phone="+14155550100", merged_into=c)
    with scope(workspace=workspace):
        groups = {group.customer_ids: group.reasons for group in dedupe.duplicate_groups_find(workspace=workspace)}
    assert groups == {
        (a.id, b.id): ("Same email: ann@example.org",),
        (c.id, d.id): ("Same phone: +14155550100",),
        (e.id, f.id): ("Same name and postcode: eve park SW1A1AA",),
    }
    assert merged.id not in {i for ids in groups for i in ids}


def test_duplicates_in_other_workspaces_are_not_mixed_in(workspace, other_workspace):
    CustomerFactory(workspace=workspace, email="same@example.org")
    CustomerFactory(workspace=other_workspace, email="same@example.org")
    with scope(workspace=workspace):
        assert dedupe.duplicate_groups_find(workspace=workspace) == []


@pytest.fixture
def pair(workspace):
    now = timezone.now()
    survivor = CustomerFactory(
        workspace=workspace,
        email="ann@example.org",
        first_name="Ann",
        last_name="Lee",
        phone="",
        email_consent="not_subscribed",
        email_consent_at=now - dt.timedelta(days=30),
        loyalty_points=10,
    )
    duplicate = CustomerFactory(
        workspace=workspace,
        email="ann@example.org",
        first_name="Ann",
        last_name="Lee",
        phone="+14155550100",
        email_consent="subscribed",
        email_consent_at=now - dt.timedelta(days=1),
        loyalty_points=5,
        sms_consent="subscribed",
        sms_consent_at=None,
    )
    OrderFactory(workspace=workspace, customer=survivor, total=Decimal("20"), net_total=Decimal("20"))
    order = OrderFactory(workspace=workspace, customer=duplicate, total=Decimal("30"), net_total=Decimal("30"))
    OrderLineFactory(order=order, category="Scarves", total=Decimal("30"))
    event = EventFactory(customer=duplicate, type="product_viewed")
    note = NoteFactory(customer=duplicate, body="Asked about sizes")
    cart = CartFactory(workspace=workspace, customer=duplicate)
    CustomerTagFactory(customer=duplicate, name="wholesale")
    CustomerTagFactory(customer=duplicate, name="vip")
    CustomerTagFactory(customer=survivor, name="vip")
    with scope(workspace=workspace):
        customer_stats_refresh(workspace=workspace)
    return {"survivor": survivor, "duplicate": duplicate, "order": order, "event": event, "note": note, "cart": cart}


def test_merge_moves_everything_and_keeps_the_latest_consent(workspace, owner, pair):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    with scope(workspace=workspace):
        result = dedupe.customer_merge(workspace=workspace, survivor=survivor, duplicates=[duplicate], actor=owner)
        assert Order.objects.get(pk=pair["order"].pk).customer_id == survivor.id
        # the line's copy of its order's customer follows (segments find buyers by it)
        assert list(OrderLine.objects.filter(order=pair["order"]).values_list("customer_id", flat=True)) == [
            survivor.id
        ]
        assert Event.objects.get(pk=pair["event"].pk).customer_id == survivor.id
        assert Note.objects.get(pk=pair["note"].pk).customer_id == survivor.id
        assert Cart.objects.get(pk=pair["cart"].pk).customer_id == survivor.id
        assert set(CustomerTag.objects.filter(customer=survivor).values_list("name", flat=True)) == {"vip", "wholesale"}
        assert not CustomerTag.objects.filter(customer=duplicate).exists()
        merged_event = Event.objects.get(customer=survivor, type=EventType.CUSTOMERS_MERGED)
        audit = AuditRecord.objects.get(action=AuditRecord.Action.MERGE)
        duplicate.refresh_from_db()
    assert result.orders_count == 2 and result.total_spent == Decimal("50.00")
    assert result.email_consent == "subscribed"  # the duplicate's decision is newer
    assert result.sms_consent == "not_subscribed"  # the duplicate's has no time: it does not win
    assert result.phone == "+14155550100"  # an empty field filled from the duplicate
    assert result.loyalty_points == 15
    assert duplicate.merged_into_id == survivor.id
    assert merged_event.properties["duplicate_id"] == duplicate.id and merged_event.properties["orders"] == 1
    assert audit.customer_id_ref == survivor.id and audit.actor == owner
    assert audit.data["merges"][0]["moved"]["orders"] == [pair["order"].id]


def test_undo_restores_both_profiles(workspace, owner, pair):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    with scope(workspace=workspace):
        dedupe.customer_merge(workspace=workspace, survivor=survivor, duplicates=[duplicate], actor=owner)
        audit = AuditRecord.objects.get(action=AuditRecord.Action.MERGE)
        restored = dedupe.customer_merge_undo(workspace=workspace, audit=audit, actor=owner)
        duplicate.refresh_from_db()
        assert Order.objects.get(pk=pair["order"].pk).customer_id == duplicate.id
        assert list(OrderLine.objects.filter(order=pair["order"]).values_list("customer_id", flat=True)) == [
            duplicate.id
        ]
        assert Event.objects.get(pk=pair["event"].pk).customer_id == duplicate.id
        assert Note.objects.get(pk=pair["note"].pk).customer_id == duplicate.id
        assert Cart.objects.get(pk=pair["cart"].pk).customer_id == duplicate.id
        assert set(CustomerTag.objects.filter(customer=survivor).values_list("name", flat=True)) == {"vip"}
        assert set(CustomerTag.objects.filter(customer=duplicate).values_list("name", flat=True)) == {
            "vip",
            "wholesale",
        }
        assert Event.objects.filter(customer=survivor, type=EventType.CUSTOMERS_UNMERGED).count() == 1
        audit.refresh_from_db()
        with pytest.raises(Exception, match="already undone"):
            dedupe.customer_merge_undo(workspace=workspace, audit=audit, actor=owner)
    assert duplicate.merged_into_id is None and duplicate.orders_count == 1
    assert restored.orders_count == 1 and restored.total_spent == Decimal("20.00")
    assert restored.email_consent == "not_subscribed" and restored.phone == "" and restored.loyalty_points == 10


def test_orders_synced_later_for_the_merged_away_id_go_to_the_survivor(workspace, pair):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    with scope(workspace=workspace):
        dedupe.customer_merge(workspace=workspace, survivor=survivor, duplicates=[duplicate])
        orders_bulk_upsert(
            workspace=workspace,
            records=[
                OrderRecord(
                    source=duplicate.source,
                    external_id="late-order",
                    customer_external_id=duplicate.external_id,
                    placed_at=timezone.now(),
                    total=Decimal("5"),
                )
            ],
        )
        assert Order.objects.get(external_id="late-order").customer_id == survivor.id


def test_merge_page_and_undo_views(workspace, owner_client, pair):
    page = owner_client.get(f"/w/{workspace.slug}/customers/duplicates/").content.decode()
    assert "Same email: ann@example.org" in page
    response = owner_client.post(
        f"/w/{workspace.slug}/customers/duplicates/merge/",
        {"survivor_id": pair["survivor"].id, "customer_ids": [pair["survivor"].id, pair["duplicate"].id]},
    )
    assert response.status_code == 302
    page = owner_client.get(f"/w/{workspace.slug}/customers/duplicates/").content.decode()
    assert "Same email" not in page and "Undo" in page
    with scopes_disabled():
        audit = AuditRecord.objects.get(action="merge")
    owner_client.post(f"/w/{workspace.slug}/customers/merges/{audit.id}/undo/")
    with scopes_disabled():
        assert Customer.objects.get(pk=pair["duplicate"].pk).merged_into_id is None
    # the merged-away profile's page sends the rep to the survivor while merged
    assert (
        "Same email: ann@example.org" in owner_client.get(f"/w/{workspace.slug}/customers/duplicates/").content.decode()
    )


def test_viewer_cannot_merge(workspace, make_member_client, pair):
    viewer = make_member_client(workspace, "viewer")
    response = viewer.post(
        f"/w/{workspace.slug}/customers/duplicates/merge/",
        {"survivor_id": pair["survivor"].id, "customer_ids": [pair["duplicate"].id]},
    )
    assert response.status_code == 403
    with scopes_disabled():
        assert Customer.objects.get(pk=pair["duplicate"].pk).merged_into_id is None


def test_cannot_merge_another_workspaces_customer(workspace, other_workspace, owner_client, pair):
    stranger = CustomerFactory(workspace=other_workspace, email="ann@example.org")
    OrderFactory(workspace=other_workspace, customer=stranger)
    owner_client.post(
        f"/w/{workspace.slug}/customers/duplicates/merge/",
        {"survivor_id": pair["survivor"].id, "customer_ids": [stranger.id]},
    )
    with scopes_disabled():
        stranger.refresh_from_db()
        assert stranger.merged_into_id is None
        assert Order.objects.get(customer=stranger).workspace_id == other_workspace.id
    response = owner_client.post(
        f"/w/{workspace.slug}/customers/duplicates/merge/",
        {"survivor_id": stranger.id, "customer_ids": [pair["duplicate"].id]},
    )
    assert response.status_code == 404


def test_seed_duplicates_creates_findable_duplicates(workspace):
    for index in range(12):
        CustomerFactory(workspace=workspace, phone=f"+1415555{index:04d}", postcode=f"9{index:04d}")
    with scope(workspace=workspace):
        created = seed_duplicates(workspace=workspace, count=6)
        groups = dedupe.duplicate_groups_find(workspace=workspace)
    assert created == 6
    assert len(groups) == 6
    reasons = {reason.split(":")[0] for group in groups for reason in group.reasons}
    assert reasons == {"Same email", "Same phone", "Same name and postcode"}


def test_store_updates_of_the_merged_away_customer_land_on_the_survivor(workspace, pair):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    later = timezone.now() + dt.timedelta(hours=1)
    update = CustomerRecord(
        source=duplicate.source,
        external_id=duplicate.external_id,
        email="ann@example.org",
        first_name="Annabel",
        last_name="",  # blank: the survivor keeps the name it has
        city="Leeds",
        email_consent="unsubscribed",
        email_consent_at=later,
        tags=("newsletter",),
        updated_at=later,
    )
    with scope(workspace=workspace):
        dedupe.customer_merge(workspace=workspace, survivor=survivor, duplicates=[duplicate])

        result = customers_bulk_upsert(workspace=workspace, records=[update])
        replay = customers_bulk_upsert(workspace=workspace, records=[update])
        returned = customer_upsert(workspace=workspace, record=update)

        survivor.refresh_from_db()
        duplicate.refresh_from_db()
        survivor_tags = set(CustomerTag.objects.filter(customer=survivor).values_list("name", flat=True))
        duplicate_has_tags = CustomerTag.objects.filter(customer=duplicate).exists()
    assert (result.updated, replay.skipped_stale) == (1, 1)
    assert returned.id == survivor.id
    assert (survivor.first_name, survivor.last_name, survivor.city) == ("Annabel", "Lee", "Leeds")
    assert (survivor.email_consent, survivor.email_consent_at) == ("unsubscribed", later)
    assert survivor_tags == {"vip", "wholesale", "newsletter"} and not duplicate_has_tags
    assert (duplicate.first_name, duplicate.city, duplicate.merged_into_id) == ("Ann", "", survivor.id)
    assert duplicate.source_updated_at == later


def test_an_older_consent_from_the_merged_away_store_does_not_override_the_survivors(workspace, pair):
    survivor, duplicate = pair["survivor"], pair["duplicate"]
    with scope(workspace=workspace):
        dedupe.customer_merge(workspace=workspace, survivor=survivor, duplicates=[duplicate])
        customers_bulk_upsert(
            workspace=workspace,
            records=[
                CustomerRecord(
                    source=duplicate.source,
                    external_id=duplicate.external_id,
                    email_consent="not_subscribed",
                    email_consent_at=timezone.now() - dt.timedelta(days=10),
                    updated_at=timezone.now() + dt.timedelta(hours=1),
                )
            ],
        )
        survivor.refresh_from_db()
    assert survivor.email_consent == "subscribed"  # taken from the duplicate's newer decision at the merge
