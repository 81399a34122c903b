"""Factories for customers rows the shared tests/factories.py does not cover (imports, audit records)."""

import factory
from django.core.files.base import ContentFile

from customers.models import AuditRecord, ImportJob
from tests.factories import ScopedFactory, WorkspaceFactory


class ImportJobFactory(ScopedFactory):
    class Meta:
        model = ImportJob

    workspace = factory.SubFactory(WorkspaceFactory)
    kind = ImportJob.Kind.CUSTOMERS
    status = ImportJob.Status.MAPPING
    original_name = "customers.csv"
    encoding = "utf-8"
    delimiter = ","
    mapping = factory.LazyFunction(lambda: {"email": "email"})
    total_rows = 1
    file = factory.LazyFunction(lambda: ContentFile(b"email\nann@example.org\n", name="customers.csv"))


class MergeAuditFactory(ScopedFactory):
    """A merge audit record whose data matches what customers.dedupe.customer_merge writes."""

    class Meta:
        model = AuditRecord

    workspace = factory.SubFactory(WorkspaceFactory)
    action = AuditRecord.Action.MERGE
    customer_id_ref = 0
    data = factory.LazyFunction(lambda: {"survivor_id": 0, "merges": [], "merge_event_ids": []})
