"""A real Celery worker on Redis sends a rep's reply and a due CSAT survey through a real SMTP server."""

import datetime as dt
import time

import pytest
from django.utils import timezone
from django_scopes import scope

from support import services
from support.models import DeliveryStatus, Survey, SurveyStatus, TicketMessage
from support.tasks import survey_send
from tests.factories import CustomerFactory, MembershipFactory, WorkspaceFactory

pytestmark = [pytest.mark.services]


@pytest.fixture
def celery_worker_env(smtp_server):
    return {"EMAIL_URL": smtp_server.url, "DEFAULT_FROM_EMAIL": "Acme <support@acme.test>"}


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_worker_sends_the_reply_and_the_survey_once(celery_worker, smtp_server):
    workspace = WorkspaceFactory(slug="acme")
    rep = MembershipFactory(workspace=workspace, role="support")
    customer = CustomerFactory(workspace=workspace, email="jane@shopper.test")
    with scope(workspace=workspace):
        ticket = services.ticket_create(workspace=workspace, subject="Zipper", body_text="Broken", customer=customer)

        # a reply is queued on commit and the worker emails it
        reply = services.ticket_reply(
            workspace=workspace, ticket=ticket, author=rep.user, body="Replacement sent", then_status="solved"
        )
        assert wait_for(lambda: TicketMessage.objects.get(pk=reply.pk).delivery_status == DeliveryStatus.SENT), (
            celery_worker.output()
        )

        # solving scheduled a CSAT survey; once due, the task (sent twice, as a retry would) emails it once
        survey = Survey.objects.get(ticket=ticket)
        Survey.objects.filter(pk=survey.pk).update(send_after=timezone.now() - dt.timedelta(seconds=1))
        survey_send.delay(workspace.pk, survey.pk)
        survey_send.delay(workspace.pk, survey.pk)
        assert wait_for(lambda: Survey.objects.get(pk=survey.pk).status == SurveyStatus.SENT), celery_worker.output()

    assert wait_for(lambda: len(smtp_server.messages) >= 2)
    time.sleep(1)  # give a duplicate the chance to show up
    subjects = sorted(m["message"]["Subject"] for m in smtp_server.messages)
    assert subjects == [f"How did we do? [#{ticket.number}] Zipper", f"Re: Zipper [#{ticket.number}]"]
    assert all(m["to"] == ["jane@shopper.test"] for m in smtp_server.messages)
