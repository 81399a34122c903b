"""How the cross-workspace test gets a value for each URL keyword argument of a workspace URL.

Each entry maps a URL kwarg name to a function that creates one object in the given workspace and returns the
value that goes into the URL. A new workspace URL taking ``<int:thing_id>`` joins the cross-workspace test by
adding one line here; until then that test fails and names the missing kwarg.
"""

from collections.abc import Callable
from typing import Any

from crm.models import Workspace
from tests import factories

URL_OBJECTS: dict[str, Callable[[Workspace], Any]] = {
    "membership_id": lambda ws: factories.MembershipFactory(workspace=ws, role="viewer").pk,
    "customer_id": lambda ws: factories.CustomerFactory(workspace=ws).pk,
    "note_id": lambda ws: factories.NoteFactory(customer__workspace=ws).pk,
    "order_id": lambda ws: factories.OrderFactory(workspace=ws).pk,
    "product_id": lambda ws: factories.ProductFactory(workspace=ws).pk,
    "cart_id": lambda ws: factories.CartFactory(workspace=ws).pk,
    "event_id": lambda ws: factories.EventFactory(customer__workspace=ws).pk,
}
