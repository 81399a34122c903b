"""The beat entry points run every app's periodic work for every workspace (eagerly here)."""

from decimal import Decimal

from django_scopes import scopes_disabled

from crm import tasks
from customers.models import Cart, Customer, Event
from tests.factories import CartFactory, CustomerFactory, OrderFactory


def test_nightly_recomputes_customer_stats_then_rfm(workspace):
    customer = CustomerFactory(workspace=workspace)
    OrderFactory(workspace=workspace, customer=customer, total=Decimal("70.00"), net_total=Decimal("70.00"))
    OrderFactory(workspace=workspace, customer=customer, total=Decimal("30.00"), net_total=Decimal("30.00"))
    CustomerFactory(workspace=workspace)  # never ordered
    with scopes_disabled():
        Customer.objects.filter(pk=customer.pk).update(orders_count=0, total_spent=0)  # drifted stats

    tasks.nightly()

    with scopes_disabled():
        customer.refresh_from_db()
        prospect = Customer.objects.exclude(pk=customer.pk).get()
    assert (customer.orders_count, customer.total_spent) == (2, Decimal("100.00"))
    assert customer.rfm_group not in ("", "Prospects")
    assert prospect.rfm_group == "Prospects"


def test_minute_tick_marks_stale_checkouts_abandoned_in_every_workspace(workspace, other_workspace):
    mine = CartFactory(workspace=workspace)  # last activity two hours ago, no order since
    theirs = CartFactory(workspace=other_workspace)

    tasks.minute_tick()

    with scopes_disabled():
        assert {Cart.objects.get(pk=mine.pk).status, Cart.objects.get(pk=theirs.pk).status} == {"abandoned"}
        assert Event.objects.filter(type="cart_abandoned", workspace=workspace).count() == 1
        assert Event.objects.filter(type="cart_abandoned", workspace=other_workspace).count() == 1
