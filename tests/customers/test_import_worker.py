"""The import runs in a real Celery worker on Redis (not eagerly), and the page polls its progress to the report."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_scopes import scopes_disabled

from customers.models import Customer, ImportJob
from tests.factories import MembershipFactory, WorkspaceFactory

pytestmark = pytest.mark.services


@pytest.fixture
def shared_media(settings, monkeypatch, tmp_path):
    """The worker is another process: it must read uploads from the same MEDIA_ROOT as the test."""
    media = tmp_path / "shared-media"
    settings.MEDIA_ROOT = str(media)
    monkeypatch.setenv("MEDIA_ROOT", str(media))
    return media


def test_import_runs_in_a_real_worker_and_reports_rejected_rows(shared_media, celery_worker):
    workspace = WorkspaceFactory(slug="acme")
    membership = MembershipFactory(workspace=workspace, role="owner")
    client = Client()
    client.force_login(membership.user)
    rows = ["email,first_name,phone"] + [f"shopper{i}@example.org,Shopper{i},+1415555{i:04d}" for i in range(2500)]
    rows.insert(10, "broken@,Broken,")
    content = ("\n".join(rows) + "\n").encode()

    response = client.post(
        "/w/acme/customers/imports/", {"kind": "customers", "file": SimpleUploadedFile("c.csv", content)}
    )
    job_url = response["Location"]
    response = client.post(job_url, {"map_email": "email", "map_first_name": "first_name", "map_phone": "phone"})
    assert response.status_code == 302

    progress_url = f"{job_url}progress/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(progress_url, HTTP_HX_REQUEST="true").content.decode()
        if "import-report" in body:
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"the import did not finish:\n{celery_worker.output()[-3000:]}")
    assert "Imported 2500 rows, rejected 1." in body
    with scopes_disabled():
        job = ImportJob.objects.get()
        assert job.status == ImportJob.Status.DONE
        assert job.errors == [{"row": 11, "field": "email", "reason": "'broken@' is not a valid email address"}]
        assert Customer.objects.filter(workspace=workspace).count() == 2500
    assert "customers.tasks.import_run" in celery_worker.output()
