"""Demo data for analytics: seed_demo calls ``seed(workspace=...)`` after the store's orders and events exist."""

from analytics.predictive_services import predictions_fit
from analytics.services import rollups_rebuild
from crm.models import Workspace


def seed(*, workspace: Workspace) -> None:
    """Build every rollup from the demo orders and events, then fit the predictive models (inside the scope)."""
    from customers.models import Customer

    if not Customer.objects.filter(workspace=workspace).exclude(rfm_group="").exists():
        try:
            from segments.services import rfm_rescore
        except ImportError:
            pass
        else:
            rfm_rescore(workspace=workspace)  # the RFM chart needs groups; segments' own demo may not have run
    rollups_rebuild(workspace=workspace)
    predictions_fit(workspace=workspace)
