"""Segments: RFM settings and history, rule-based and static segments, their memberships and size history.

Customer RFM scores themselves live on ``customers.Customer`` (denormalised columns written in bulk by
``segments.services.rfm_rescore``); what is here is what only segments owns.
"""

from django.conf import settings
from django.db import models

from crm.models import TenantModel, Workspace


class RfmSettings(TenantModel):
    """One row per workspace, created on first use. Empty ``group_map`` means the default table in ``segments.rfm``."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    # None = all time. Otherwise only orders placed in the last N days count towards R, F and M.
    window_days = models.PositiveIntegerField(null=True, blank=True)
    # {"<R>,<FM>": "<group>"} for the cells that differ from the default map.
    group_map = models.JSONField(default=dict, blank=True)
    last_rescored_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"RFM settings of {self.workspace}"


class RfmGroupChange(TenantModel):
    """A customer moved from one RFM group to another (``from_group`` is empty on the first scoring).

    No foreign-key constraints in the database: a first scoring writes one row per customer in one transaction, and
    PostgreSQL checks each row's keys at commit by locking the customer row again (FOR KEY SHARE): 1.3 s per 200,000
    rows measured, some 7 s of a million-customer first scoring. The rescore only writes rows for customers it has
    just read in the same transaction, and deleting a customer or a workspace still cascades here through Django.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    from_group = models.CharField(max_length=30, blank=True, default="")
    to_group = models.CharField(max_length=30)
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "customer", "-changed_at"], name="rfm_change_ws_customer")]


class RfmSnapshot(TenantModel):
    """What the RFM page shows, frozen at each rescore (one row per workspace and day) for "change since last week".

    ``groups``: {group: {"customers", "revenue", "orders", "days_since_last_order_sum"}};
    ``grid``: {"<R>,<F>": {"customers", "revenue"}}.
    """

    taken_on = models.DateField()
    taken_at = models.DateTimeField()
    customers = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    groups = models.JSONField(default=dict)
    grid = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "taken_on"], name="rfm_snapshot_unique_day")]


class Segment(TenantModel):
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=255, blank=True, default="")
    # The rule tree (see segments.compiler). Static segments keep the rule they were filled from, for reference.
    rules = models.JSONField(default=dict, blank=True)
    is_dynamic = models.BooleanField(default=True)
    starter_key = models.CharField(max_length=40, blank=True, default="", help_text="Set on starter segments")
    size = models.PositiveIntegerField(default=0)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    # The newest customers.Event id when the segment was last evaluated: the minute tick refreshes a dynamic
    # segment again only once something newer happened in the workspace.
    evaluated_event_id = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="segment_unique_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(TenantModel):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "segment", "customer"], name="segment_membership_unique")
        ]
        indexes = [models.Index(fields=["workspace", "customer"], name="segment_membership_ws_customer")]


class SegmentSize(TenantModel):
    """One point of a segment's size-over-time chart, written by each refresh."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="sizes")
    recorded_at = models.DateTimeField()
    size = models.PositiveIntegerField()
    entered = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["workspace", "segment", "recorded_at"], name="segment_size_ws_time")]
