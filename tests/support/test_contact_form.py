"""The public contact form: opens a web-form ticket; honeypot, time check and rate limit keep bots out."""

import time

import pytest
from django.core import signing
from django.core.cache import cache
from django.test import Client
from django_scopes import scope

from support.forms import ContactForm
from support.models import Ticket
from tests.factories import CustomerFactory, OrderFactory


@pytest.fixture(autouse=True)
def _clear_rate_limit():
    cache.clear()
    yield
    cache.clear()


def started(seconds_ago: float) -> str:
    return signing.dumps(time.time() - seconds_ago, salt=ContactForm.SALT)


def form_data(**overrides):
    return {
        "name": "Pat Buyer",
        "email": "pat@buyer.test",
        "subject": "Wrong size",
        "message": "I need a medium.",
        "order_number": "",
        "website": "",
        "started": started(10),
        **overrides,
    }


def test_form_page_renders_with_a_honeypot_and_a_timestamp(workspace):
    response = Client().get(f"/support/contact/{workspace.slug}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'name="website"' in body and 'name="started"' in body and "Contact Acme Outfitters" in body


def test_a_person_opens_a_web_form_ticket_linked_to_their_order(workspace):
    customer = CustomerFactory(workspace=workspace, email="pat@buyer.test")
    order = OrderFactory(workspace=workspace, customer=customer, number="#1042")

    response = Client().post(f"/support/contact/{workspace.slug}/", form_data(order_number="1042"))

    assert response.status_code == 200
    with scope(workspace=workspace):
        ticket = Ticket.objects.get()
        assert (ticket.channel, ticket.customer, ticket.order, ticket.subject) == (
            "web_form",
            customer,
            order,
            "Wrong size",
        )
    assert f"#{ticket.number}" in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"website": "http://spam.test"}, "could not be sent"),
        ({"started": "just now"}, "That was quick"),  # stamped when the test runs, not when it is collected
        ({"started": "forged"}, "expired"),
    ],
)
def test_bots_are_turned_away(workspace, overrides, message):
    if overrides.get("started") == "just now":
        overrides = {"started": started(0.5)}
    response = Client().post(f"/support/contact/{workspace.slug}/", form_data(**overrides))

    assert response.status_code == 422
    assert message in response.content.decode()
    with scope(workspace=workspace):
        assert Ticket.objects.count() == 0


def test_missing_fields_are_named(workspace):
    response = Client().post(f"/support/contact/{workspace.slug}/", form_data(email="not-an-email", message=""))

    body = response.content.decode()
    assert response.status_code == 422
    assert "Enter a valid email address." in body and "This field is required." in body


def test_rate_limit_per_address(workspace):
    client = Client()
    statuses = [
        client.post(f"/support/contact/{workspace.slug}/", form_data(subject=f"n{i}")).status_code for i in range(6)
    ]

    assert statuses == [200, 200, 200, 200, 200, 429]
    with scope(workspace=workspace):
        assert Ticket.objects.count() == 5


def test_unknown_workspace_is_404(db):
    assert Client().get("/support/contact/no-such-store/").status_code == 404
