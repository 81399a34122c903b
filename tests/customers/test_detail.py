import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from customers.models import Customer, Event, EventType, Note
from customers.selectors import customer_timeline
from customers.services import note_create
from customers.timeline import STYLES, timeline_entry
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


def url(workspace, customer_id, suffix=""):
    return f"/w/{workspace.slug}/customers/{customer_id}/{suffix}"


@pytest.fixture
def customer(workspace):
    return CustomerFactory(
        workspace=workspace,
        first_name="Ann",
        last_name="Lee",
        email="ann@example.org",
        loyalty_points=120,
        top_categories=["Shoes", "Bags"],
        orders_count=1,
    )


def test_every_event_type_has_an_icon_and_a_one_line_summary():
    assert set(STYLES) == set(EventType.values)
    samples = {
        EventType.ORDER_PLACED: (
            {"number": "#1001", "total": "59.00", "currency": "USD", "items": 2},
            "Placed order #1001 · 59.00 USD · 2 items",
        ),
        EventType.PRODUCT_VIEWED: ({"title": "Red scarf"}, "Viewed Red scarf"),
        EventType.EMAIL_OPENED: ({"subject": "Spring sale"}, "Opened “Spring sale”"),
        EventType.CONSENT_CHANGED: (
            {"channel": "email", "from": "not_subscribed", "to": "subscribed", "source": "shopify"},
            "Email consent: not subscribed → subscribed · via shopify",
        ),
        EventType.NOTE_ADDED: ({"author": "Dana", "excerpt": "Called"}, "Dana: Called"),
        EventType.TICKET_OPENED: ({"ticket_id": 7, "number": 1042, "subject": "Late"}, "Opened ticket #1042 · “Late”"),
    }
    for event_type, (properties, expected) in samples.items():
        entry = timeline_entry(Event(type=event_type, properties=properties, occurred_at=timezone.now()))
        assert entry.summary == expected
        assert entry.icon.startswith("bi-")
    for event_type in EventType.values:
        entry = timeline_entry(Event(type=event_type, properties={}, occurred_at=timezone.now()))
        assert entry.summary and "\n" not in entry.summary


def test_unknown_or_malformed_events_still_render():
    entry = timeline_entry(Event(type="loyalty_redeemed", properties={}, occurred_at=timezone.now()))
    assert entry.summary == "Loyalty redeemed"
    broken = timeline_entry(
        Event(type=EventType.ORDER_PLACED, properties={"discount_codes": 5}, occurred_at=timezone.now())
    )
    assert broken.summary == "Placed an order"


def test_timeline_pages_newest_first_with_one_query_per_page(workspace, customer):
    base = timezone.now()
    for minutes in range(30):
        EventFactory(
            customer=customer,
            type="page_viewed",
            occurred_at=base - dt.timedelta(minutes=minutes),
            properties={"title": f"Page {minutes}"},
        )
    # two events at the very same instant must not be skipped or repeated across pages
    EventFactory(customer=customer, type="email_sent", occurred_at=base - dt.timedelta(minutes=24, seconds=30))
    EventFactory(customer=customer, type="email_sent", occurred_at=base - dt.timedelta(minutes=24, seconds=30))
    with scope(workspace=workspace):
        with CaptureQueriesContext(connection) as queries:
            first = customer_timeline(workspace=workspace, customer=customer)
        assert len(queries) == 1
        second = customer_timeline(workspace=workspace, customer=customer, cursor=first.next_cursor)
    assert len(first.events) == 25 and len(second.events) == 7
    assert second.next_cursor == ""
    seen = [e.id for e in first.events + second.events]
    assert len(seen) == len(set(seen)) == 32
    times = [e.occurred_at for e in first.events + second.events]
    assert times == sorted(times, reverse=True)


def test_timeline_query_uses_the_customer_time_index(workspace, customer, postgres_only):
    # given a workspace with enough events for the planner to choose by cost (on a near-empty table any plan is
    # as cheap as another), and fresh statistics
    other = CustomerFactory(workspace=workspace)
    with scope(workspace=workspace):
        now = timezone.now()
        Event.objects.bulk_create(
            [
                Event(
                    workspace=workspace, customer=person, type="page_viewed", occurred_at=now - dt.timedelta(minutes=n)
                )
                for n in range(2000)
                for person in (customer, other)
            ]
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE customers_event")
        events = Event.objects.filter(workspace=workspace, customer=customer).order_by("-occurred_at", "-id")[:26]
        plan = events.explain()
    # then one page of the timeline is read from the (workspace, customer, -occurred_at) index
    assert "event_ws_customer_time" in plan


def test_timeline_filter_by_group_and_type(workspace, owner_client, customer):
    EventFactory(customer=customer, type="order_placed", properties={"number": "#77"})
    EventFactory(customer=customer, type="email_opened", properties={"subject": "Hello"})
    response = owner_client.get(url(workspace, customer.id, "timeline/"), {"type": "orders"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "Placed order #77" in body and "Hello" not in body
    assert body.lstrip().startswith('<div id="timeline"')
    response = owner_client.get(
        url(workspace, customer.id, "timeline/"), {"type": "email_opened"}, HTTP_HX_REQUEST="true"
    )
    assert "Opened “Hello”" in response.content.decode() and "#77" not in response.content.decode()


def test_timeline_loads_more_when_revealed(workspace, owner_client, customer):
    for minutes in range(30):
        EventFactory(
            customer=customer,
            type="page_viewed",
            occurred_at=timezone.now() - dt.timedelta(minutes=minutes),
            properties={"title": f"Page {minutes}"},
        )
    page = owner_client.get(url(workspace, customer.id)).content.decode()
    more = re.search(r'hx-get="([^"]+cursor=[^"]+)" hx-trigger="revealed"', page)
    assert more is not None
    rest = owner_client.get(more.group(1).replace("&amp;", "&"), HTTP_HX_REQUEST="true").content.decode()
    assert rest.count('class="timeline-item"') == 5 and "Page 29" in rest and 'hx-trigger="revealed"' not in rest


def test_orders_tab_loads_older_orders_with_htmx_and_a_real_link(workspace, owner_client, customer):
    base = timezone.now()
    for n in range(23):
        order = OrderFactory(
            workspace=workspace, customer=customer, number=f"#N{n:02d}", placed_at=base - dt.timedelta(days=n)
        )
        OrderLineFactory(order=order, title=f"Item of #N{n:02d}")
    # two orders at the same moment: the keyset cursor (placed_at, id) neither repeats nor skips one
    OrderFactory(workspace=workspace, customer=customer, number="#TIE", placed_at=base - dt.timedelta(days=19))
    page = owner_client.get(url(workspace, customer.id)).content.decode()
    assert page.count("data-order-id=") == 20 and "#TIE" in page  # same moment as #N19, newer id: first
    more = re.search(r'<a [^>]*data-testid="orders-more"[^>]*href="([^"]+)"[^>]*hx-get="([^"]+)"', page, re.S)
    assert more is not None and more.group(1) == more.group(2)

    rest = owner_client.get(more.group(2).replace("&amp;", "&"), HTTP_HX_REQUEST="true")

    body = rest.content.decode()
    assert "<html" not in body and 'data-testid="orders-more"' not in body  # the partial, and the last page
    assert re.findall(r"Order (#\w+)", body) == ["#N19", "#N20", "#N21", "#N22"]
    assert "Item of #N21" in body


def test_orders_load_more_link_works_without_javascript(workspace, owner_client, customer):
    for n in range(21):
        OrderFactory(
            workspace=workspace, customer=customer, number=f"#N{n:02d}", placed_at=timezone.now() - dt.timedelta(days=n)
        )
    page = owner_client.get(url(workspace, customer.id)).content.decode()
    link = re.search(r'data-testid="orders-more"\s+href="([^"]+)"', page).group(1).replace("&amp;", "&")

    response = owner_client.get(link, follow=True)

    body = response.content.decode()
    assert response.redirect_chain[0][1] == 302
    assert re.findall(r"Order (#\w+)", body) == ["#N20"] and "Back to the latest orders" in body


def test_cannot_access_other_workspace_orders_tab(workspace, other_workspace, owner_client):
    stranger = CustomerFactory(workspace=other_workspace)
    OrderFactory(workspace=other_workspace, customer=stranger, number="#SECRET")
    response = owner_client.get(url(workspace, stranger.id, "orders/"), HTTP_HX_REQUEST="true")
    assert response.status_code == 404 and b"#SECRET" not in response.content


def test_customer_page_shows_header_orders_carts_and_cards(workspace, owner_client, customer):
    order = OrderFactory(workspace=workspace, customer=customer, number="#5001")
    OrderLineFactory(order=order, title="Trail shoe", category="Shoes")
    CartFactory(workspace=workspace, customer=customer, lines=[{"title": "Wool hat", "quantity": 2}])
    CustomerTagFactory(customer=customer, name="vip")
    NoteFactory(customer=customer, body="Prefers phone calls", is_pinned=True)
    body = owner_client.get(url(workspace, customer.id)).content.decode()
    for text in (
        "Ann Lee",
        "ann@example.org",
        "vip",
        "Order #5001",
        "Trail shoe",
        "Wool hat",
        "Shoes",
        "Bags",
        "120",
        "Prefers phone calls",
        "bi-pin-angle-fill",
    ):
        assert text in body, text


def test_add_note_appears_in_notes_and_on_timeline(workspace, owner_client, owner, customer):
    response = owner_client.post(
        url(workspace, customer.id, "notes/"), {"body": "Wants the blue one"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "timeline-changed"
    assert "Wants the blue one" in response.content.decode()
    with scopes_disabled():
        note = Note.objects.get(customer=customer)
        assert note.author == owner
        event = Event.objects.get(customer=customer, type=EventType.NOTE_ADDED)
    assert event.properties["note_id"] == note.id
    timeline = owner_client.get(url(workspace, customer.id, "timeline/"), HTTP_HX_REQUEST="true").content.decode()
    assert "Wants the blue one" in timeline


def test_empty_note_is_refused_with_a_message(workspace, owner_client, customer):
    response = owner_client.post(url(workspace, customer.id, "notes/"), {"body": "   "}, HTTP_HX_REQUEST="true")
    assert "is-invalid" in response.content.decode()
    with scopes_disabled():
        assert not Note.objects.exists()


def test_pin_any_note_but_edit_only_your_own(workspace, owner_client, owner, customer):
    with scope(workspace=workspace):
        mine = note_create(workspace=workspace, customer=customer, author=owner, body="mine")
    theirs = NoteFactory(customer=customer, body="theirs")
    owner_client.post(f"/w/{workspace.slug}/customers/notes/{theirs.id}/", {"is_pinned": "1"})
    owner_client.post(f"/w/{workspace.slug}/customers/notes/{theirs.id}/", {"body": "hijacked"})
    owner_client.post(f"/w/{workspace.slug}/customers/notes/{mine.id}/", {"body": "mine, edited"})
    timeline = owner_client.get(url(workspace, customer.id, "timeline/"), HTTP_HX_REQUEST="true").content.decode()
    with scopes_disabled():
        theirs.refresh_from_db()
        mine.refresh_from_db()
    assert theirs.is_pinned is True and theirs.body == "theirs"
    assert mine.body == "mine, edited"
    assert "mine, edited" in timeline


def test_profile_edit_normalises_phone_and_validates_email(workspace, owner_client, customer):
    data = {
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "not-an-email",
        "phone": "(415) 555-0100",
        "country": "US",
        "loyalty_points": 5,
        "gender": "",
    }
    response = owner_client.post(url(workspace, customer.id, "edit/"), data)
    assert response.status_code == 200
    assert "is not a valid email address" in response.content.decode()
    with scopes_disabled():
        assert Customer.objects.get(pk=customer.pk).email == "ann@example.org"

    response = owner_client.post(url(workspace, customer.id, "edit/"), {**data, "email": " Ann.New@Example.ORG "})
    assert response.status_code == 302
    with scopes_disabled():
        saved = Customer.objects.get(pk=customer.pk)
        assert saved.email == "ann.new@example.org" and saved.phone == "+14155550100"
        event = Event.objects.get(customer=customer, type=EventType.PROFILE_UPDATED)
    assert set(event.properties["fields"]) == {"email", "phone", "loyalty_points"}


def test_profile_edit_rejects_a_bad_phone(workspace, owner_client, customer):
    data = {
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.org",
        "phone": "12",
        "country": "US",
        "loyalty_points": 0,
        "gender": "",
    }
    response = owner_client.post(url(workspace, customer.id, "edit/"), data)
    assert (
        "is not a valid phone number" in response.content.decode()
        or "is not a phone number" in response.content.decode()
    )


def test_viewer_cannot_add_notes_or_edit(workspace, make_member_client, customer):
    viewer = make_member_client(workspace, "viewer")
    assert viewer.get(url(workspace, customer.id)).status_code == 200
    assert viewer.post(url(workspace, customer.id, "notes/"), {"body": "x"}).status_code == 403
    assert viewer.post(url(workspace, customer.id, "edit/"), {"first_name": "X"}).status_code == 403
    with scopes_disabled():
        assert not Note.objects.exists()
        assert Customer.objects.get(pk=customer.pk).first_name == "Ann"


def test_consent_change_is_recorded(workspace, owner_client, customer):
    owner_client.post(url(workspace, customer.id, "consent/"), {"channel": "email", "status": "unsubscribed"})
    with scopes_disabled():
        customer.refresh_from_db()
        event = Event.objects.get(customer=customer, type=EventType.CONSENT_CHANGED)
    assert customer.email_consent == "unsubscribed"
    assert event.properties["to"] == "unsubscribed"


def test_cannot_access_other_workspace_customer_page(workspace, other_workspace, owner_client):
    stranger = CustomerFactory(workspace=other_workspace)
    note = NoteFactory(customer=stranger, body="secret")
    assert owner_client.get(url(workspace, stranger.id)).status_code == 404
    assert owner_client.post(url(workspace, stranger.id, "notes/"), {"body": "x"}).status_code == 404
    assert owner_client.post(f"/w/{workspace.slug}/customers/notes/{note.id}/", {"is_pinned": "1"}).status_code == 404
    with scopes_disabled():
        assert Note.objects.filter(customer=stranger).count() == 1
        assert not Note.objects.get(pk=note.pk).is_pinned
