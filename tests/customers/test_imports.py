import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django_scopes import scope, scopes_disabled

from customers import imports
from customers.models import Customer, CustomerTag, ImportJob, Order

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = """Email,First Name,Last Name,Phone,Country,Accepts Email Marketing,Tags,Birthday
ann@example.org,Ann,Lee,(415) 555-0100,US,yes,vip; winter,1990-04-01
not-an-email,Bad,Email,,US,no,,
bob@example.org,Bob,Stone,12,US,no,,
cid@example.org,Cid,Moss,+33 6 12 34 56 78,FR,maybe,,
dee@example.org,Dée,Ünal,,DE,no,,31/12/1985
,,,,,,,
eve@example.org,Eve,Park,,USA,no,,
fay@example.org,Fay,Ho,,GB,unsubscribed,,
"""


def upload(workspace, client, content: bytes, kind="customers", name="customers.csv"):
    return client.post(
        f"/w/{workspace.slug}/customers/imports/",
        {"kind": kind, "file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def run_import(workspace, client, content: bytes, kind="customers", mapping_overrides=None) -> ImportJob:
    response = upload(workspace, client, content, kind=kind)
    assert response.status_code == 302, response.content.decode()[:2000]
    job_url = response["Location"]
    page = client.get(job_url).content.decode()
    data = {}  # submit the guessed mapping, as a user who accepts it would
    for name, options in re.findall(r'name="map_(\w+)"[^>]*>(.*?)</select>', page, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', options)
        if selected:
            data[f"map_{name}"] = selected.group(1)
    data.update({f"map_{k}": v for k, v in (mapping_overrides or {}).items()})
    # The task is enqueued on commit; the test transaction never commits, so run the callbacks here (eager Celery).
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(job_url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    with scopes_disabled():
        return ImportJob.objects.get(pk=int(job_url.rstrip("/").split("/")[-1]))


def test_mapping_is_guessed_from_headers():
    headers = ["Email", "First Name", "Last Name", "Phone", "Country", "Accepts Email Marketing", "Tags", "Birthday"]
    assert imports.guess_mapping(kind="customers", headers=headers) == {
        "email": "Email",
        "first_name": "First Name",
        "last_name": "Last Name",
        "phone": "Phone",
        "country": "Country",
        "email_consent": "Accepts Email Marketing",
        "tags": "Tags",
        "birth_date": "Birthday",
    }
    shopify_orders = [
        "Name",
        "Email",
        "Financial Status",
        "Paid at",
        "Currency",
        "Subtotal",
        "Shipping",
        "Taxes",
        "Total",
        "Discount Code",
        "Discount Amount",
        "Created at",
        "Lineitem quantity",
        "Lineitem name",
        "Lineitem price",
        "Lineitem sku",
        "Id",
    ]
    mapping = imports.guess_mapping(kind="orders", headers=shopify_orders)
    assert mapping["external_id"] == "Id" and mapping["number"] == "Name" and mapping["placed_at"] == "Created at"
    assert mapping["line_title"] == "Lineitem name" and mapping["line_quantity"] == "Lineitem quantity"
    assert mapping["total"] == "Total" and mapping["discount_codes"] == "Discount Code"
    french = ["E-mail", "Prénom", "Nom", "Téléphone", "Pays"]
    assert imports.guess_mapping(kind="customers", headers=french) == {
        "email": "E-mail",
        "first_name": "Prénom",
        "last_name": "Nom",
        "phone": "Téléphone",
        "country": "Pays",
    }


def test_customer_import_keeps_valid_rows_and_reports_rejected_ones(workspace, owner_client):
    job = run_import(workspace, owner_client, CUSTOMERS_CSV.encode())
    assert job.status == ImportJob.Status.DONE
    assert (job.processed_rows, job.imported_rows, job.rejected_rows) == (7, 3, 4)
    assert job.errors == [
        {"row": 3, "field": "email", "reason": "'not-an-email' is not a valid email address"},
        {"row": 4, "field": "phone", "reason": "'12' is not a valid phone number for US"},
        {"row": 5, "field": "email_consent", "reason": "'maybe' is not a consent answer (yes / no / unsubscribed)"},
        {"row": 8, "field": "country", "reason": "'USA' is not a two-letter country code (ISO 3166-1 alpha-2)"},
    ]
    with scope(workspace=workspace):
        ann = Customer.objects.get(email="ann@example.org")
        assert ann.phone == "+14155550100" and ann.email_consent == "subscribed" and ann.email_consent_source == "csv"
        assert str(ann.birth_date) == "1990-04-01"
        assert set(CustomerTag.objects.filter(customer=ann).values_list("name", flat=True)) == {"vip", "winter"}
        dee = Customer.objects.get(email="dee@example.org")
        assert (dee.first_name, dee.last_name, str(dee.birth_date)) == ("Dée", "Ünal", "1985-12-31")
        assert Customer.objects.get(email="fay@example.org").email_consent == "unsubscribed"
        assert Customer.objects.count() == 3
    report = owner_client.get(f"/w/{workspace.slug}/customers/imports/{job.id}/").content.decode()
    assert "Imported 3 rows, rejected 4." in report
    assert "&#x27;12&#x27; is not a valid phone number for US" in report


def test_reimporting_the_same_file_changes_nothing(workspace, owner_client):
    run_import(workspace, owner_client, CUSTOMERS_CSV.encode())
    run_import(workspace, owner_client, CUSTOMERS_CSV.encode())
    with scopes_disabled():
        assert Customer.objects.filter(workspace=workspace).count() == 3


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8", ","), ("utf-8-sig", ";"), ("latin-1", ";"), ("cp1252", "\t"), ("utf-8", "\t")],
)
def test_encodings_and_delimiters(workspace, owner_client, encoding, delimiter):
    rows = [["email", "first_name", "last_name", "city"], ["zoe@example.org", "Zoé", "Müller", "Zürich"]]
    content = "\n".join(delimiter.join(row) for row in rows).encode(encoding)
    job = run_import(workspace, owner_client, content)
    assert job.delimiter == delimiter
    assert job.imported_rows == 1, job.errors
    with scope(workspace=workspace):
        zoe = Customer.objects.get(email="zoe@example.org")
    assert (zoe.first_name, zoe.last_name, zoe.city) == ("Zoé", "Müller", "Zürich")


def test_bad_uploads_get_a_clear_message(workspace, owner_client):
    response = upload(workspace, owner_client, b"")
    assert response.status_code == 400
    assert (
        "The submitted file is empty." in response.content.decode() or "The file is empty." in response.content.decode()
    )
    response = upload(workspace, owner_client, b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    assert response.status_code == 400
    assert "binary data" in response.content.decode()


def test_mapping_without_a_key_column_is_refused(workspace, owner_client):
    response = upload(workspace, owner_client, b"first_name,city\nAnn,Paris\n")
    job_url = response["Location"]
    response = owner_client.post(job_url, {"map_first_name": "first_name", "map_city": "city"})
    assert response.status_code == 400
    assert "customer id, the email or the phone" in response.content.decode()
    with scopes_disabled():
        assert ImportJob.objects.get().status == ImportJob.Status.MAPPING


ORDERS_CSV = (
    (
        "Id,Name,Email,Created at,Financial Status,Currency,Total,Discount Code,"
        "Lineitem name,Lineitem quantity,Lineitem price,Lineitem sku\n"
    )
    + """\
1001,#1001,ann@example.org,2025-03-01 10:00:00,paid,USD,60.00,SPRING,Red scarf,2,20.00,SC-1
1001,#1001,ann@example.org,2025-03-01 10:00:00,paid,USD,60.00,SPRING,Wool hat,1,20.00,HT-1
1002,#1002,bob@example.org,not a date,paid,USD,10.00,,Sock,1,10.00,SO-1
1003,#1003,,2025-03-04,paid,USD,15.00,,Sock,1,15.00,SO-1
1004,#1004,cid@example.org,2025-03-05,paid,EUR,"1.234,50",,Coat,1,"1.234,50",CO-1
1004,#1004,cid@example.org,2025-03-05,paid,EUR,"1.234,50",,Belt,zero,5,BE-1
1005,#1005,dee@example.org,2025-03-06,refunded,USD,30.00,,Bag,1,30.00,BA-1
1001,#1001,ann@example.org,2025-03-01 10:00:00,paid,USD,60.00,,Extra,1,1,EX-1
"""
)


def test_order_import_groups_line_items_and_rejects_bad_rows(workspace, owner_client):
    job = run_import(workspace, owner_client, ORDERS_CSV.encode(), kind="orders")
    assert job.status == ImportJob.Status.DONE
    assert job.errors == [
        {"row": 4, "field": "placed_at", "reason": "'not a date' is not a date (use YYYY-MM-DD)"},
        {
            "row": 5,
            "field": "email",
            "reason": "the order has no customer id and no email, so it cannot be linked to a customer",
        },
        {"row": 7, "field": "line_quantity", "reason": "'zero' is not a whole number"},
        {
            "row": 9,
            "field": "external_id",
            "reason": "order 1001 appeared earlier in the file; keep the rows of one order together",
        },
    ]
    with scope(workspace=workspace):
        orders = {o.external_id: o for o in Order.objects.prefetch_related("lines")}
        assert set(orders) == {"1001", "1004", "1005"}
        assert [(line.title, line.quantity) for line in orders["1001"].lines.order_by("id")] == [
            ("Red scarf", 2),
            ("Wool hat", 1),
        ]
        assert orders["1001"].discount_codes == ["SPRING"]
        assert orders["1004"].total == Decimal("1234.50") and orders["1004"].currency == "EUR"
        assert [line.title for line in orders["1004"].lines.all()] == ["Coat"]
        ann = Customer.objects.get(email="ann@example.org")
        assert ann.orders_count == 1 and ann.total_spent == Decimal("60.00")


def test_progress_partial_polls_until_done(workspace, owner_client):
    response = upload(workspace, owner_client, b"email\nann@example.org\n")
    job_id = int(response["Location"].rstrip("/").split("/")[-1])
    with scopes_disabled():
        ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.RUNNING, total_rows=4, processed_rows=1)
    partial = owner_client.get(f"/w/{workspace.slug}/customers/imports/{job_id}/progress/", HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert 'hx-trigger="every 1s"' in body and "25%" in body
    with scopes_disabled():
        ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.DONE, message="Imported 4 rows.")
    body = owner_client.get(
        f"/w/{workspace.slug}/customers/imports/{job_id}/progress/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "hx-trigger" not in body and "Imported 4 rows." in body


def test_a_duplicated_task_imports_nothing_twice(workspace, owner_client):
    job = run_import(workspace, owner_client, b"email\nann@example.org\n")
    with scope(workspace=workspace):
        again = imports.import_run(workspace=workspace, job=job)
    assert again.status == ImportJob.Status.DONE and again.imported_rows == 1


def test_viewer_cannot_import(workspace, make_member_client):
    viewer = make_member_client(workspace, "viewer")
    assert upload(workspace, viewer, b"email\na@b.co\n").status_code == 403
    with scopes_disabled():
        assert not ImportJob.objects.exists()


def test_cannot_access_other_workspace_import(workspace, other_workspace, owner_client):
    from tests.customers.factories import ImportJobFactory

    job = ImportJobFactory(workspace=other_workspace)
    assert owner_client.get(f"/w/{workspace.slug}/customers/imports/{job.id}/").status_code == 404
    assert (
        owner_client.post(f"/w/{workspace.slug}/customers/imports/{job.id}/", {"map_email": "email"}).status_code == 404
    )
    with scopes_disabled():
        assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.MAPPING
