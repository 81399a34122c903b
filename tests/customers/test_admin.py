import pytest
from django.test import Client

from tests.factories import CustomerFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_superuser_sees_customers_of_every_workspace(workspace, other_workspace):
    CustomerFactory(workspace=workspace, email="ann@acme.test")
    CustomerFactory(workspace=other_workspace, email="bob@globex.test")
    order = OrderFactory(workspace=other_workspace)
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/customers/customer/").content.decode()
    assert "ann@acme.test" in page and "bob@globex.test" in page
    assert client.get(f"/admin/customers/order/{order.id}/change/").status_code == 200
    for model in ("product", "cart", "note", "event", "customertag", "auditrecord", "importjob"):
        assert client.get(f"/admin/customers/{model}/").status_code == 200, model


def test_staff_who_are_not_superusers_are_refused(workspace):
    CustomerFactory(workspace=workspace, email="ann@acme.test")
    staff = UserFactory(is_staff=True, is_superuser=False)
    client = Client()
    client.force_login(staff)
    response = client.get("/admin/customers/customer/")
    assert response.status_code in (302, 403)
    assert "ann@acme.test" not in response.content.decode()
