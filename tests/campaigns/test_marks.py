"""Pipelined "sent" marks on PostgreSQL: each committed on its own, none lost when the worker is killed."""

import signal
import subprocess
import sys
import time

import psycopg
import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.marks import SentMarks
from campaigns.models import Message
from tests.campaigns.factories import CampaignFactory, MessageFactory
from tests.conftest import ROOT, _worker_env


@pytest.fixture
def postgres_transactional(transactional_db):
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        from tests.conftest import required_service_url

        required_service_url("DATABASE_URL")
        pytest.skip("pipelined marks are PostgreSQL's")


def claimed_messages(workspace, count: int) -> list[int]:
    with scope(workspace=workspace):
        campaign = CampaignFactory(workspace=workspace)
        ids = [MessageFactory(campaign=campaign).pk for _ in range(count)]
        Message.objects.filter(id__in=ids).update(status=Message.Status.SENDING, claim_token="t")
    return ids


def statuses_seen_by_another_connection(ids: list[int]) -> dict[int, str]:
    db = django_settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"],
        dbname=db["NAME"],
    ) as other:
        rows = other.execute(f"SELECT id, status FROM {Message._meta.db_table} WHERE id = ANY(%s)", [ids]).fetchall()
    return dict(rows)


def mark(marks: SentMarks, message_id: int, subject: str = "Hello") -> None:
    marks.sent(
        message_id=message_id, sent_at=timezone.now(), to_email="a@example.org", subject=subject, esp_message_id=""
    )


def test_each_mark_is_committed_on_its_own_before_the_pipeline_closes(workspace, postgres_transactional):
    first, second = claimed_messages(workspace, 2)

    with SentMarks(workspace_id=workspace.pk) as marks:
        assert marks._pipeline is not None, "outside a transaction on PostgreSQL the marks are pipelined"
        mark(marks, first)
        deadline = time.monotonic() + 5
        while statuses_seen_by_another_connection([first])[first] != "sent" and time.monotonic() < deadline:
            time.sleep(0.02)
        seen = statuses_seen_by_another_connection([first, second])

    assert seen == {first: "sent", second: "sending"}
    assert statuses_seen_by_another_connection([first, second]) == {first: "sent", second: "sending"}
    with scopes_disabled():
        assert Message.objects.get(pk=first).to_email == "a@example.org"


def test_a_refused_mark_is_reported_and_the_next_ones_are_still_committed(workspace, postgres_transactional):
    ids = claimed_messages(workspace, 3)

    with SentMarks(workspace_id=workspace.pk) as marks:
        mark(marks, ids[0])
        mark(marks, ids[1], subject="x" * 300)  # longer than the column: the server refuses this one UPDATE
        mark(marks, ids[2])

    assert marks.refused == [ids[1]]
    assert statuses_seen_by_another_connection(ids) == {ids[0]: "sent", ids[1]: "sending", ids[2]: "sent"}
    with scopes_disabled():  # the connection is usable again for ordinary queries
        assert Message.objects.filter(id__in=ids, status="sent").count() == 2


CHILD = """
import os, signal, sys
import django
django.setup()
from django.utils import timezone
from campaigns.marks import SentMarks
workspace_id, *ids = map(int, sys.argv[1:])
with SentMarks(workspace_id=workspace_id) as marks:
    for message_id in ids:
        marks.confirm()  # what the send loop does before handing the next message to the backend
        marks.sent(message_id=message_id, sent_at=timezone.now(), to_email="a@example.org", subject="Hi",
                   esp_message_id="")
    os.kill(os.getpid(), signal.SIGKILL)  # the worker dies right after writing its last mark
"""


def test_a_killed_worker_loses_at_most_the_mark_of_the_message_in_flight(workspace, postgres_transactional):
    ids = claimed_messages(workspace, 300)
    env = _worker_env("redis://127.0.0.1:6379/15") | {"DJANGO_SETTINGS_MODULE": "crm.settings"}

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(workspace.pk), *map(str, ids)], cwd=ROOT, env=env, capture_output=True
    )

    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    statuses = statuses_seen_by_another_connection(ids)
    assert {statuses[i] for i in ids[:-1]} == {"sent"}
    # The last mark was written but not confirmed: the server may have committed it or, having found its client
    # gone, not (then that one message is sent again after the lease, as with any crash right after a send).
    assert statuses[ids[-1]] in ("sent", "sending")
