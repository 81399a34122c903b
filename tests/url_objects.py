"""How the cross-workspace test gets a value for each URL keyword argument of a workspace URL.

Each entry maps a URL kwarg name to a function that creates one object in the given workspace and returns the
value that goes into the URL. A new workspace URL taking ``<int:thing_id>`` joins the cross-workspace test by
adding one line here; until then that test fails and names the missing kwarg.
"""

from collections.abc import Callable
from typing import Any

from crm.models import Workspace
from tests import factories
from tests.campaigns import factories as campaign_factories
from tests.customers import factories as customer_factories
from tests.integrations import factories as integration_factories
from tests.segments import factories as segment_factories
from tests.support import factories as support_factories

URL_OBJECTS: dict[str, Callable[[Workspace], Any]] = {
    "membership_id": lambda ws: factories.MembershipFactory(workspace=ws, role="viewer").pk,
    "customer_id": lambda ws: factories.CustomerFactory(workspace=ws).pk,
    "note_id": lambda ws: factories.NoteFactory(customer__workspace=ws).pk,
    "order_id": lambda ws: factories.OrderFactory(workspace=ws).pk,
    "product_id": lambda ws: factories.ProductFactory(workspace=ws).pk,
    "cart_id": lambda ws: factories.CartFactory(workspace=ws).pk,
    "event_id": lambda ws: factories.EventFactory(customer__workspace=ws).pk,
    "import_id": lambda ws: customer_factories.ImportJobFactory(workspace=ws).pk,
    "audit_id": lambda ws: customer_factories.MergeAuditFactory(workspace=ws).pk,
    "ticket_id": lambda ws: support_factories.TicketFactory(workspace=ws).pk,
    "attachment_id": lambda ws: support_factories.AttachmentFactory(message__ticket__workspace=ws).pk,
    "team_id": lambda ws: support_factories.TeamFactory(workspace=ws).pk,
    "rule_id": lambda ws: support_factories.RoutingRuleFactory(workspace=ws).pk,
    "canned_id": lambda ws: support_factories.CannedReplyFactory(workspace=ws).pk,
    "campaign_id": lambda ws: campaign_factories.CampaignFactory(workspace=ws).pk,
    "template_id": lambda ws: campaign_factories.EmailTemplateFactory(workspace=ws).pk,
    "flow_id": lambda ws: campaign_factories.FlowFactory(workspace=ws).pk,
    "suppression_id": lambda ws: campaign_factories.SuppressionFactory(workspace=ws).pk,
    "step_id": lambda ws: campaign_factories.FlowStepFactory(flow__workspace=ws).pk,
    "segment_id": lambda ws: segment_factories.SegmentFactory(workspace=ws).pk,
    "connection_id": lambda ws: integration_factories.StoreConnectionFactory(workspace=ws).pk,
    "run_id": lambda ws: integration_factories.SyncRunFactory(connection__workspace=ws).pk,
}
