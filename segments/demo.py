"""Demo data for segments: the starter segments and a first RFM scoring (called by ``manage.py seed_demo``)."""

from crm.models import Workspace
from segments import services


def seed(*, workspace: Workspace) -> None:
    """Score RFM first (starter segments and the RFM page read the groups), then create the starter segments."""
    services.rfm_rescore(workspace=workspace)
    services.segments_create_starters(workspace=workspace)
