"""Unique promo codes registered with the store (fake Shopify and WooCommerce) before the emails carrying them."""

import pytest
from django.core import mail
from django.test import override_settings
from django_scopes import scope

from campaigns import services
from campaigns.models import Message, PromoCode
from campaigns.promo import PromoResult, promo_codes_register
from campaigns.sending import messages_send_due
from integrations import crypto
from integrations.connectors import ConnectorError
from tests.campaigns.factories import CampaignFactory, EmailTemplateFactory, make_segment, subscribed_customers
from tests.integrations.factories import StoreConnectionFactory


def launch_with_unique_codes(workspace, count: int):
    customers = subscribed_customers(workspace, count)
    template = EmailTemplateFactory(
        workspace=workspace,
        name="Spring",
        unique_promo_prefix="SPRING",
        unique_promo_percent=15,
        subject="Your code {{ promo_code }}",
    )
    segment = make_segment(workspace, customers)
    campaign = CampaignFactory(workspace=workspace, template=template, audience_segment_ids=[segment.pk])
    services.campaign_launch(workspace=workspace, campaign=campaign, dispatch=False)
    return campaign


def connect(workspace, server, platform: str):
    credentials = (
        {"access_token": server.access_token}
        if platform == "shopify"
        else {"consumer_key": server.consumer_key, "consumer_secret": server.consumer_secret}
    )
    return StoreConnectionFactory(
        workspace=workspace,
        platform=platform,
        base_url=server.url,
        status="connected",
        credentials_encrypted=crypto.encrypt_json(credentials),
    )


def codes_in_emails() -> set[str]:
    return {m.subject.removeprefix("Your code ") for m in mail.outbox}


@override_settings(INTEGRATIONS_ALLOW_LOCAL_STORES=True)
def test_codes_are_created_as_one_shopify_discount_before_the_emails_go(workspace, fake_shopify):
    with scope(workspace=workspace):
        connect(workspace, fake_shopify, "shopify")
        campaign = launch_with_unique_codes(workspace, 260)  # more than one discountRedeemCodeBulkAdd call

        assert promo_codes_register(workspace=workspace) == PromoResult(registered=260)
        assert messages_send_due(workspace=workspace).sent == 260
        stored = set(PromoCode.objects.filter(message__campaign=campaign).values_list("code", flat=True))

    (discount,) = fake_shopify.discounts.values()
    assert discount["percentage"] == 0.15 and discount["title"].startswith("Spring")
    assert set(discount["codes"]) == stored == codes_in_emails()
    assert len(stored) == 260
    mutations = [r["body"]["query"] for r in fake_shopify.requests if "mutation" in r["body"]["query"]]
    assert sum("discountRedeemCodeBulkAdd(" in q for q in mutations) == 2  # 259 more codes, 250 per call


@override_settings(INTEGRATIONS_ALLOW_LOCAL_STORES=True)
def test_codes_are_created_as_woocommerce_coupons_and_a_retry_is_harmless(workspace, fake_woo):
    with scope(workspace=workspace):
        connect(workspace, fake_woo, "woocommerce")
        launch_with_unique_codes(workspace, 3)
        connector_codes = promo_codes_register(workspace=workspace)
        PromoCode.objects.all().delete()  # as if the worker died after the store answered
        again = promo_codes_register(workspace=workspace)  # the store answers "already exists": still registered
        messages_send_due(workspace=workspace)

    assert connector_codes == again == PromoResult(registered=3)
    assert {c.upper() for c in fake_woo.coupons} == codes_in_emails()
    coupon = next(iter(fake_woo.coupons.values()))
    assert (coupon["discount_type"], coupon["amount"], coupon["usage_limit"]) == ("percent", "15", 1)


@override_settings(INTEGRATIONS_ALLOW_LOCAL_STORES=True)
def test_a_store_refusing_the_codes_holds_the_emails_back(workspace, fake_shopify):
    with scope(workspace=workspace):
        connection = connect(workspace, fake_shopify, "shopify")
        connection.set_credentials({"access_token": "wrong"})
        connection.save()
        campaign = launch_with_unique_codes(workspace, 2)

        with pytest.raises(ConnectorError):
            promo_codes_register(workspace=workspace)
        result = messages_send_due(workspace=workspace)

        assert (result.sent, result.deferred) == (0, 2)
        assert set(Message.objects.filter(campaign=campaign).values_list("deferred_reason", flat=True)) == {
            "promo_code"
        }
        assert not PromoCode.objects.exists()
    assert mail.outbox == [] and fake_shopify.discounts == {}


def test_without_a_store_the_codes_stay_local(workspace):
    with scope(workspace=workspace):
        launch_with_unique_codes(workspace, 2)

        assert promo_codes_register(workspace=workspace) == PromoResult(local=2)
        assert messages_send_due(workspace=workspace).sent == 2
        assert set(PromoCode.objects.values_list("registered_at", flat=True)) == {None}
