"""The invitation email goes through a real Celery worker on Redis and a real SMTP server."""

import time

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from crm.models import Invitation
from tests.conftest import SmtpSink
from tests.factories import MembershipFactory


@pytest.fixture
def smtp_sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def celery_worker_env(smtp_sink):
    return {"EMAIL_URL": smtp_sink.url}


def test_invitation_is_emailed_by_the_worker(smtp_sink, celery_worker):
    owner = MembershipFactory(workspace__slug="worker-ws", workspace__name="Worker Store", role="owner")
    client = Client()
    client.force_login(owner.user)

    client.post("/w/worker-ws/settings/members/invite/", {"email": "new.rep@example.com", "role": "support"})

    deadline = time.monotonic() + 20
    while not smtp_sink.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(smtp_sink.messages) == 1, celery_worker.output()
    delivered = smtp_sink.messages[0]
    assert delivered["to"] == ["new.rep@example.com"]
    assert delivered["message"]["Subject"] == "You are invited to Worker Store"
    with scopes_disabled():
        token = Invitation.objects.get().token
    assert f"/invitations/{token}/" in delivered["message"].get_payload()
