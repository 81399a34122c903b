import factory

from segments.compiler import condition, group
from segments.models import Segment
from tests.factories import ScopedFactory, WorkspaceFactory


class SegmentFactory(ScopedFactory):
    class Meta:
        model = Segment

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Segment {n}")
    rules = factory.LazyFunction(lambda: group("all", condition("orders_count", "gte", value=1)))
    is_dynamic = True
