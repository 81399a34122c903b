"""A real Celery worker on Redis sends campaigns through a real SMTP server (aiosmtpd on 127.0.0.1).

These need REDIS_URL (and a database the worker process can share: PostgreSQL via DATABASE_URL); locally without
them they skip, in CI they must run.
"""

import asyncio
import datetime as dt
import email
import os
import signal
import socket
import threading
import time
from collections import Counter

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django_scopes import scope, scopes_disabled

from campaigns import services
from campaigns.models import Campaign, Message
from campaigns.sending import messages_requeue_stale
from tests.campaigns.factories import CampaignFactory, make_segment, subscribed_customers
from tests.conftest import CeleryWorker


class RecordingHandler:
    """Keeps every message the server accepted. With ``hold_at=n`` it stalls the n-th DATA command until
    ``release`` is set; if the client has gone meanwhile (its worker was killed), the transaction never completed
    and nothing is accepted, as RFC 5321 allows before the final 250 reply."""

    def __init__(self, hold_at: int | None = None):
        self.accepted: list[tuple[str, str]] = []
        self.data_commands = 0
        self.hold_at = hold_at
        self.holding = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self.lock:
            self.data_commands += 1
            number = self.data_commands
        if number == self.hold_at:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            if session.transport is None or session.transport.is_closing():
                return "451 Client went away before the transaction completed"
        message = email.message_from_bytes(envelope.content)
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.accepted.append((recipient, message["X-CRM-Message"]))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def shared_database(transactional_db):
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        from tests.conftest import required_service_url

        required_service_url("DATABASE_URL")
        pytest.skip("the worker process needs a database it can share with the test: PostgreSQL")


def smtp(handler, monkeypatch) -> Controller:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    # The worker is a subprocess: it reads EMAIL_URL from the environment it is started with.
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{port}")
    return controller


@pytest.fixture
def real_worker(redis_url, shared_database, settings):
    from crm.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.broker_url = redis_url
    workers: list[CeleryWorker] = []

    def start() -> CeleryWorker:
        worker = CeleryWorker(redis_url, queues="email")
        if workers:  # a restart keeps the queue: do not flush Redis
            import redis as redis_lib

            flush = redis_lib.Redis.flushdb
            redis_lib.Redis.flushdb = lambda self, *a, **k: None
            try:
                worker.start()
            finally:
                redis_lib.Redis.flushdb = flush
        else:
            worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.conf.task_always_eager = True


def wait_for(condition, timeout: float = 60, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out: {message}")


def sent_count(campaign) -> int:
    with scopes_disabled():
        return Message.objects.filter(campaign=campaign, status=Message.Status.SENT).count()


def launch_campaign(workspace, count: int) -> tuple[Campaign, list]:
    with scope(workspace=workspace):
        customers = subscribed_customers(workspace, count)
        segment = make_segment(workspace, customers)
        campaign = CampaignFactory(workspace=workspace, audience_segment_ids=[segment.pk])
        services.campaign_launch(workspace=workspace, campaign=campaign)  # enqueues on commit
    return campaign, customers


def test_worker_sends_a_campaign_through_smtp_exactly_once_per_recipient(workspace, real_worker, monkeypatch):
    handler = RecordingHandler()
    controller = smtp(handler, monkeypatch)
    try:
        worker = real_worker()
        campaign, customers = launch_campaign(workspace, 25)

        wait_for(lambda: sent_count(campaign) == 25, message=worker.output()[-2000:])
        with scopes_disabled():
            wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == "sent")
            tokens = set(Message.objects.filter(campaign=campaign).values_list("token", flat=True))
    finally:
        controller.stop()

    recipients = Counter(r for r, _ in handler.accepted)
    assert recipients == Counter({c.email: 1 for c in customers})
    assert {t for _, t in handler.accepted} == tokens


def test_worker_killed_mid_send_then_restarted_sends_none_twice_and_loses_none(workspace, real_worker, monkeypatch):
    handler = RecordingHandler(hold_at=10)
    controller = smtp(handler, monkeypatch)
    try:
        worker = real_worker()
        campaign, customers = launch_campaign(workspace, 30)

        assert handler.holding.wait(60), worker.output()[-2000:]
        worker.kill(signal.SIGKILL)  # mid-send: the 10th message is in the middle of its SMTP transaction
        time.sleep(0.5)
        handler.release.set()
        with scopes_disabled():
            stuck = Message.objects.filter(campaign=campaign, status=Message.Status.SENDING).count()
        assert sent_count(campaign) == 9 and stuck == 21

        # What the minute tick does once the dead worker's lease is over (the lease is 10 minutes; the test
        # knows the worker is dead, so it does not wait): stale claims go back to the queue, the tick re-dispatches.
        with scope(workspace=workspace):
            assert messages_requeue_stale(workspace=workspace, older_than=dt.timedelta(0)) == 21
        restarted = real_worker()
        from campaigns.tasks import tick

        tick.delay(workspace.pk)
        wait_for(lambda: sent_count(campaign) == 30, message=restarted.output()[-2000:])
    finally:
        controller.stop()

    recipients = Counter(r for r, _ in handler.accepted)
    assert recipients == Counter({c.email: 1 for c in customers}), "every recipient exactly once"
    assert handler.data_commands == 31  # the interrupted attempt was never accepted, then retried once
    assert os.environ["EMAIL_URL"].startswith("smtp://127.0.0.1:")
