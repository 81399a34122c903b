from django.contrib import admin

from customers.admin import SuperuserOnlyAdmin
from segments.models import RfmGroupChange, RfmSettings, RfmSnapshot, Segment, SegmentMembership, SegmentSize


class UnscopedAdmin(SuperuserOnlyAdmin):
    """Superusers only, across workspaces (the tenancy middleware disables scopes for admin requests)."""


@admin.register(Segment)
class SegmentAdmin(UnscopedAdmin):
    list_display = ("name", "workspace", "is_dynamic", "size", "last_evaluated_at")
    list_filter = ("is_dynamic",)
    search_fields = ("name",)
    raw_id_fields = ("created_by",)


@admin.register(RfmSettings)
class RfmSettingsAdmin(UnscopedAdmin):
    list_display = ("workspace", "window_days", "last_rescored_at")


@admin.register(RfmSnapshot)
class RfmSnapshotAdmin(UnscopedAdmin):
    list_display = ("workspace", "taken_on", "customers", "revenue")


@admin.register(RfmGroupChange)
class RfmGroupChangeAdmin(UnscopedAdmin):
    list_display = ("workspace", "customer_id", "from_group", "to_group", "changed_at")
    raw_id_fields = ("customer",)


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(UnscopedAdmin):
    list_display = ("workspace", "segment", "customer_id", "added_at")
    raw_id_fields = ("segment", "customer")


@admin.register(SegmentSize)
class SegmentSizeAdmin(UnscopedAdmin):
    list_display = ("workspace", "segment", "recorded_at", "size", "entered", "left")
    raw_id_fields = ("segment",)
