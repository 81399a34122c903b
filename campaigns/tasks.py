"""Celery entry points: take ids, open the workspace scope, call the service of the same name."""

import logging

from celery import shared_task

from crm.tasking import workspace_scope

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def messages_send(workspace_id: int, campaign_id: int | None = None) -> int:
    """Make (and register with the store) the unique promo codes the due messages need, then send every due
    message (of one campaign, or all). Safe to run twice at once: rows are claimed, codes are idempotent."""
    from campaigns.promo import promo_codes_register
    from campaigns.sending import messages_send_due
    from integrations.connectors import ConnectorError

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return 0
        try:
            promo_codes_register(workspace=workspace)
        except ConnectorError as error:
            # Messages that need a code wait for it (the send loop defers them); every other message goes now.
            logger.warning("promo codes not registered for workspace %s: %s", workspace_id, error.message)
        return messages_send_due(workspace=workspace, campaign_id=campaign_id).sent


@shared_task
def template_send_test(workspace_id: int, template_id: int, to_email: str, customer_id: int | None = None) -> None:
    from campaigns.models import EmailTemplate
    from campaigns.services import template_send_test as send
    from customers.models import Customer

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        template = EmailTemplate.objects.filter(workspace=workspace, pk=template_id).first()
        if template is None:
            return
        customer = Customer.objects.filter(workspace=workspace, pk=customer_id).first() if customer_id else None
        send(workspace=workspace, template=template, to_email=to_email, customer=customer)


@shared_task
def tick(workspace_id: int) -> None:
    """The minute tick of one workspace: scheduled campaigns, A/B winners, crashed sends, flows, attribution."""
    from django.utils import timezone

    from campaigns.attribution import conversions_attribute
    from campaigns.flows import flows_advance, flows_enrol_by_date, flows_ingest_events
    from campaigns.sending import due_messages, messages_requeue_stale
    from campaigns.services import campaigns_decide_due, campaigns_launch_due

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return
        campaigns_launch_due(workspace=workspace)
        campaigns_decide_due(workspace=workspace)
        messages_requeue_stale(workspace=workspace)
        flows_ingest_events(workspace=workspace)
        flows_enrol_by_date(workspace=workspace)
        flows_advance(workspace=workspace)
        conversions_attribute(workspace=workspace)
        if due_messages(workspace=workspace, now=timezone.now()).exists():
            messages_send.delay(workspace_id)
