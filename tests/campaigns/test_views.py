from django.core import mail
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, EmailTemplate, Flow, Message
from tests.campaigns.factories import (
    CampaignFactory,
    EmailTemplateFactory,
    FlowFactory,
    make_segment,
    subscribed_customers,
)


def url(name, **kwargs):
    return reverse(f"campaigns:{name}", kwargs={"workspace_slug": "acme", **kwargs})


def test_list_pages_render(owner_client, workspace):
    CampaignFactory(workspace=workspace, name="Spring sale")
    for name in ("list", "template_list", "flow_list", "settings", "create", "template_create"):
        response = owner_client.get(url(name))
        assert response.status_code == 200, name
    assert b"Spring sale" in owner_client.get(url("list")).content


def test_create_a_block_template_and_send_a_test(owner_client, workspace):
    response = owner_client.post(
        url("template_create"),
        {
            "name": "Spring",
            "subject": 'Hi {{ first_name | default: "there" }}',
            "preheader": "New in",
            "format": "blocks",
            "block-0-type": "text",
            "block-0-text": "Our spring collection is here.",
            "block-1-type": "button",
            "block-1-label": "Shop",
            "block-1-url": "https://shop.example/spring",
            "to_email": "me@acme.test",
            "send_test": "1",
        },
    )

    with scope(workspace=workspace):
        template = EmailTemplate.objects.get(name="Spring")
    assert response.status_code == 302
    assert [b["type"] for b in template.blocks] == ["text", "button"]
    assert [(m.subject, m.to) for m in mail.outbox] == [("[Test] Hi there", ["me@acme.test"])]
    assert "Our spring collection is here." in mail.outbox[0].body


def test_unknown_merge_field_is_a_form_error_not_a_500(owner_client):
    response = owner_client.post(
        url("template_create"),
        {
            "name": "Bad",
            "subject": "Hi {{ password }}",
            "format": "blocks",
            "block-0-type": "text",
            "block-0-text": "x",
            "save": "1",
        },
    )
    assert response.status_code == 200
    assert "Unknown merge field “password”" in response.content.decode()


def test_live_preview_returns_the_partial_personalised_as_the_customer(owner_client, workspace):
    customer = subscribed_customers(workspace, 1, first_name="Zoe")[0]
    response = owner_client.post(
        url("template_preview"),
        {
            "name": "x",
            "subject": 'Hi {{ first_name | default: "there" }}',
            "format": "blocks",
            "block-0-type": "text",
            "block-0-text": "Hello {{ first_name }}",
            "preview_customer": str(customer.pk),
        },
        HTTP_HX_REQUEST="true",
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body.lower().split("srcdoc")[0]  # only the partial came back
    assert 'data-testid="preview-subject">Hi Zoe<' in body
    assert "Hello Zoe" in body


def test_marketer_creates_and_sends_a_campaign(make_member_client, workspace, django_capture_on_commit_callbacks):
    client = make_member_client(workspace, "marketer")
    customers = subscribed_customers(workspace, 3)
    segment = make_segment(workspace, customers, name="Everyone")
    template = EmailTemplateFactory(workspace=workspace)

    response = client.post(
        url("create"),
        {
            "name": "March news",
            "template": template.pk,
            "audience_segment_ids": [segment.pk],
            "ab_sample_percent": 20,
            "ab_wait_hours": 4,
            "ab_metric": "open",
            "is_promotional": "on",
        },
    )
    with scope(workspace=workspace):
        campaign = Campaign.objects.get(name="March news")
    assert response.status_code == 302
    detail = client.get(url("detail", campaign_id=campaign.pk))
    assert b'data-testid="audience-size">3<' in detail.content

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("send", campaign_id=campaign.pk))

    assert sorted(a for m in mail.outbox for a in m.to) == sorted(c.email for c in customers)
    report = client.get(url("detail", campaign_id=campaign.pk)).content.decode()
    assert 'data-testid="kpi-delivered">3<' in report


def test_progress_partial_for_htmx(owner_client, workspace):
    campaign = CampaignFactory(workspace=workspace, status="sending")
    response = owner_client.get(url("progress", campaign_id=campaign.pk), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'id="campaign-progress"' in response.content and b"<html" not in response.content


def test_viewer_cannot_send_or_edit(make_member_client, workspace):
    client = make_member_client(workspace, "viewer")
    customers = subscribed_customers(workspace, 1)
    segment = make_segment(workspace, customers)
    campaign = CampaignFactory(workspace=workspace, audience_segment_ids=[segment.pk])

    assert client.post(url("send", campaign_id=campaign.pk)).status_code == 403
    assert client.post(url("template_create"), {"name": "x", "subject": "y", "format": "html"}).status_code == 403
    with scopes_disabled():
        assert Message.objects.count() == 0
        assert EmailTemplate.objects.filter(name="x").count() == 0
    assert mail.outbox == []


def test_install_ready_made_flows_and_show_waiting_counts(owner_client, workspace):
    response = owner_client.post(url("flow_install"), {"preset": ["welcome", "abandoned_checkout"]})
    assert response.status_code == 302
    with scope(workspace=workspace):
        flow = Flow.objects.get(preset="abandoned_checkout")
    page = owner_client.get(url("flow_detail", flow_id=flow.pk)).content.decode()
    assert "Wait 4 hours" in page and "0 waiting" in page
    owner_client.post(url("flow_toggle", flow_id=flow.pk))
    with scope(workspace=workspace):
        flow.refresh_from_db()
    assert flow.is_active


def test_cannot_access_other_workspace_campaign_objects(owner_client, workspace, other_workspace):
    campaign = CampaignFactory(workspace=other_workspace)
    template = EmailTemplateFactory(workspace=other_workspace)
    flow = FlowFactory(workspace=other_workspace)
    assert owner_client.get(url("detail", campaign_id=campaign.pk)).status_code == 404
    assert owner_client.post(url("cancel", campaign_id=campaign.pk)).status_code == 404
    assert owner_client.get(url("template_edit", template_id=template.pk)).status_code == 404
    assert owner_client.post(url("flow_toggle", flow_id=flow.pk)).status_code == 404
    with scopes_disabled():
        assert Campaign.objects.get(pk=campaign.pk).status == "draft"
        assert Flow.objects.get(pk=flow.pk).is_active is False


def test_customer_page_shows_the_email_card(owner_client, workspace):
    from tests.campaigns.factories import MessageFactory, SuppressionFactory

    customer = subscribed_customers(workspace, 1)[0]
    MessageFactory(
        campaign__workspace=workspace,
        customer=customer,
        status="sent",
        subject="Spring is here",
        sent_at="2026-03-01T10:00:00Z",
        clicked_at="2026-03-01T11:00:00Z",
    )
    SuppressionFactory(workspace=workspace, email=customer.email, reason="bounced")

    page = owner_client.get(reverse("customers:detail", kwargs={"workspace_slug": "acme", "customer_id": customer.pk}))

    card = page.content.decode().split('data-testid="campaigns-card"')[1]
    assert "Spring is here" in card and "clicked" in card
    assert "Suppressed: Hard bounce" in card


def test_schedule_reads_the_time_in_the_workspace_timezone(owner_client, workspace):
    import datetime as dt

    workspace.timezone = "America/New_York"
    workspace.save()
    segment = make_segment(workspace, subscribed_customers(workspace, 1))
    campaign = CampaignFactory(workspace=workspace, audience_segment_ids=[segment.pk])

    owner_client.post(url("schedule", campaign_id=campaign.pk), {"scheduled_at": "2030-01-02T09:30"})

    with scope(workspace=workspace):
        campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    assert campaign.scheduled_at == dt.datetime(2030, 1, 2, 14, 30, tzinfo=dt.UTC)


def test_marketer_changes_a_wait_and_the_email_of_a_flow_step(owner_client, workspace):
    from campaigns.flows import flow_install_preset

    with scope(workspace=workspace):
        flow = flow_install_preset(workspace=workspace, key="abandoned_checkout")
        wait, send = flow.steps.order_by("position")[:2]
    other = EmailTemplateFactory(workspace=workspace, name="Cart v2")

    owner_client.post(url("flow_step_edit", flow_id=flow.pk, step_id=wait.pk), {"wait_hours": "2"})
    owner_client.post(url("flow_step_edit", flow_id=flow.pk, step_id=send.pk), {"template": str(other.pk)})
    refused = owner_client.post(
        url("flow_step_edit", flow_id=flow.pk, step_id=wait.pk), {"wait_hours": "0"}, follow=True
    )

    with scope(workspace=workspace):
        wait.refresh_from_db()
        send.refresh_from_db()
    assert (wait.wait_hours, send.template_id) == (2, other.pk)
    assert "A wait lasts between 1 hour and a year." in refused.content.decode()


def test_template_editor_says_whether_unique_codes_reach_the_store(owner_client, workspace):
    from tests.integrations.factories import StoreConnectionFactory

    template = EmailTemplateFactory(workspace=workspace, unique_promo_prefix="VIP")
    local = owner_client.get(url("template_edit", template_id=template.pk)).content.decode()
    StoreConnectionFactory(workspace=workspace, name="Acme Shopify", status="connected")
    registered = owner_client.get(url("template_edit", template_id=template.pk)).content.decode()

    assert "No store is connected: unique codes stay in the CRM" in local
    assert "Unique codes are created in <strong>Acme Shopify</strong>" in registered
