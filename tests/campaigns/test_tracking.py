import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from campaigns.attribution import conversions_attribute
from campaigns.models import Conversion, Message, Suppression
from campaigns.rendering import link_signature
from customers.models import Customer, Event
from tests.campaigns.factories import MessageFactory
from tests.factories import CustomerFactory, OrderFactory

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def sent_message(workspace):
    customer = CustomerFactory(workspace=workspace, email_consent="subscribed", email="ann@example.org")
    return MessageFactory(
        campaign__workspace=workspace,
        customer=customer,
        status="sent",
        sent_at=NOW - dt.timedelta(hours=1),
        to_email=customer.email,
    )


def events(type_):
    with scopes_disabled():
        return list(Event.objects.filter(type=type_).values_list("properties", flat=True))


def reload(message):
    with scopes_disabled():
        return Message.objects.get(pk=message.pk)


def test_open_pixel_records_one_human_open(sent_message):
    client = Client()
    ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    first = client.get(f"/e/o/{sent_message.token}.gif", HTTP_USER_AGENT=ua, REMOTE_ADDR="203.0.113.9")
    client.get(f"/e/o/{sent_message.token}.gif", HTTP_USER_AGENT=ua, REMOTE_ADDR="203.0.113.9")

    assert first.status_code == 200 and first["Content-Type"] == "image/gif"
    assert first.content.startswith(b"GIF89a")
    message = reload(sent_message)
    assert message.opened_at is not None and message.machine_opened_at is None
    assert [e["machine"] for e in events("email_opened")] == [False]


@pytest.mark.parametrize(
    ("agent", "ip"),
    [("Mozilla/5.0", "203.0.113.9"), ("Mozilla/5.0 (Macintosh)", "17.58.1.2"), ("Barracuda Sentinel", "198.51.100.1")],
)
def test_machine_opens_from_privacy_proxies_are_flagged_apart(sent_message, agent, ip):
    Client().get(f"/e/o/{sent_message.token}.gif", HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    message = reload(sent_message)
    assert message.opened_at is None and message.machine_opened_at is not None
    assert [e["machine"] for e in events("email_opened")] == [True]


def test_click_redirects_to_the_signed_url_and_records_click_and_open(sent_message):
    url = "https://shop.example/new?utm=1"
    response = Client().get(f"/e/c/{sent_message.token}/", {"u": url, "s": link_signature(url)})

    assert response.status_code == 302 and response["Location"] == url
    message = reload(sent_message)
    assert message.clicked_at is not None and message.opened_at is not None
    assert [e["url"] for e in events("email_clicked")] == [url]


def test_a_forged_click_link_is_no_open_redirect(sent_message):
    response = Client().get(f"/e/c/{sent_message.token}/", {"u": "https://evil.example/", "s": "0" * 20})
    assert response.status_code == 400
    assert reload(sent_message).clicked_at is None


def test_get_on_the_unsubscribe_link_never_unsubscribes(sent_message):
    response = Client().get(f"/e/u/{sent_message.token}/")

    assert response.status_code == 200
    assert b'<form method="post"' in response.content
    with scopes_disabled():
        assert Customer.objects.get(pk=sent_message.customer_id).email_consent == "subscribed"
        assert not Suppression.objects.exists()


def test_one_click_post_unsubscribes_without_cookies_or_login_and_answers_200(sent_message):
    client = Client(enforce_csrf_checks=True)  # a mail client has no cookie and no CSRF token
    response = client.post(
        f"/e/u/{sent_message.token}/",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    again = client.post(
        f"/e/u/{sent_message.token}/",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert (response.status_code, again.status_code) == (200, 200)
    assert "Location" not in response
    assert b"You are unsubscribed" in response.content
    with scopes_disabled():
        customer = Customer.objects.get(pk=sent_message.customer_id)
        assert (customer.email_consent, customer.email_consent_source) == ("unsubscribed", "email:one_click")
        assert list(Suppression.objects.values_list("email", "reason")) == [("ann@example.org", "unsubscribed")]
    assert reload(sent_message).unsubscribed_at is not None
    assert [e["source"] for e in events("email_unsubscribed")] == ["one_click"]


def test_unknown_unsubscribe_token_is_404(db):
    assert Client().post("/e/u/not-a-token/").status_code == 404


POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "Type": "HardBounce",
    "TypeCode": 1,
    "MessageID": "pm-123",
    "Email": "ann@example.org",
    "BouncedAt": "2026-03-10T12:00:00Z",
    "Description": "The server was unable to deliver",
    "Details": "smtp;550",
    "Metadata": {},
    "Tag": "",
    "MessageStream": "outbound",
}


def _basic(user_pass: str) -> str:
    return "Basic " + base64.b64encode(user_pass.encode()).decode()


@pytest.mark.parametrize("authorization", [None, _basic("hook:wrong-secret"), _basic("other:s3cret-hook")])
def test_forged_tracking_webhook_gets_401_and_changes_nothing(settings, sent_message, authorization):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret-hook"}
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = Client().post(
        "/e/webhooks/postmark/", data=json.dumps(POSTMARK_BOUNCE), content_type="application/json", **headers
    )
    assert response.status_code == 401
    with scopes_disabled():
        assert not Suppression.objects.exists()


def test_webhook_without_a_configured_secret_trusts_nobody(settings, sent_message):
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    response = Client().post("/e/webhooks/postmark/", data=json.dumps(POSTMARK_BOUNCE), content_type="application/json")
    assert response.status_code == 401


def test_authentic_bounce_and_complaint_webhooks_update_suppression(settings, sent_message):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret-hook"}
    with scopes_disabled():
        Message.objects.filter(pk=sent_message.pk).update(esp_message_id="pm-123")
    auth = {"HTTP_AUTHORIZATION": _basic("hook:s3cret-hook")}
    bounce = Client().post(
        "/e/webhooks/postmark/", data=json.dumps(POSTMARK_BOUNCE), content_type="application/json", **auth
    )
    complaint = dict(POSTMARK_BOUNCE, RecordType="SpamComplaint", Type="SpamComplaint", TypeCode=512)
    Client().post("/e/webhooks/postmark/", data=json.dumps(complaint), content_type="application/json", **auth)

    assert bounce.status_code == 200
    message = reload(sent_message)
    assert message.bounced_at is not None and message.complained_at is not None
    with scopes_disabled():
        assert list(Suppression.objects.values_list("reason", flat=True)) == ["bounced"]
        assert Customer.objects.get(pk=sent_message.customer_id).email_consent == "unsubscribed"
    assert len(events("email_bounced")) == 1 and len(events("email_complained")) == 1


def test_orders_within_the_window_after_a_click_are_attributed(workspace, sent_message):
    from django_scopes import scope

    customer = sent_message.customer
    with scopes_disabled():
        Message.objects.filter(pk=sent_message.pk).update(clicked_at=NOW)
    inside = OrderFactory(
        workspace=workspace, customer=customer, placed_at=NOW + dt.timedelta(days=4, hours=23), total=Decimal("80.00")
    )
    OrderFactory(workspace=workspace, customer=customer, placed_at=NOW + dt.timedelta(days=5, hours=1))
    OrderFactory(workspace=workspace, customer=customer, placed_at=NOW - dt.timedelta(hours=1))  # before the click
    with scope(workspace=workspace):
        assert conversions_attribute(workspace=workspace, now=NOW + dt.timedelta(days=6)) == 1
        assert conversions_attribute(workspace=workspace, now=NOW + dt.timedelta(days=6)) == 0
        conversion = Conversion.objects.get()
    assert (conversion.order_id, conversion.message_id, conversion.revenue) == (
        inside.pk,
        sent_message.pk,
        Decimal("80.00"),
    )
