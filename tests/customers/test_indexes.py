"""Plans the tables' indexes exist for (PostgreSQL only: SQLite's planner is not what production runs)."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from django_scopes import scope

from customers.models import Cart, Order
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_rows_changed_since_the_last_tick_are_read_from_the_updated_at_indexes(workspace, postgres_only):
    # given enough orders and carts for the planner to choose by cost, nearly all changed long ago, fresh statistics
    customer = CustomerFactory(workspace=workspace)
    long_ago = timezone.now() - dt.timedelta(days=30)
    with scope(workspace=workspace):
        Order.objects.bulk_create(
            Order(workspace=workspace, external_id=f"o{n}", customer=customer, placed_at=long_ago) for n in range(3000)
        )
        Cart.objects.bulk_create(
            Cart(workspace=workspace, external_id=f"c{n}", started_at=long_ago, last_activity_at=long_ago)
            for n in range(3000)
        )
        with connection.cursor() as cursor:
            cursor.execute("UPDATE customers_order SET updated_at = %s WHERE id %% 500 <> 0", [long_ago])
            cursor.execute("UPDATE customers_cart SET updated_at = %s WHERE id %% 500 <> 0", [long_ago])
            cursor.execute("ANALYZE customers_order")
            cursor.execute("ANALYZE customers_cart")
        since = timezone.now() - dt.timedelta(minutes=5)
        # when the analytics minute tick asks what changed since its last run
        orders_plan = Order.objects.filter(workspace=workspace, updated_at__gte=since).values("placed_at").explain()
        carts_plan = Cart.objects.filter(workspace=workspace, updated_at__gte=since).values("started_at").explain()
    # then both are index range scans
    assert "order_ws_updated" in orders_plan
    assert "cart_ws_updated" in carts_plan
