"""Admin views of derived analytics tables: read-only, since every row is rebuilt from orders and events."""

from django.contrib import admin

from analytics.models import DailyMetrics, ModelFit, RollupState


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DailyMetrics)
class DailyMetricsAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "date", "revenue", "orders", "customers_ordered", "new_customers", "sessions"]
    list_filter = ["workspace"]
    date_hierarchy = "date"


@admin.register(ModelFit)
class ModelFitAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "status", "fitted_at", "customers", "repeat_customers", "average_predicted_clv"]
    list_filter = ["status"]


@admin.register(RollupState)
class RollupStateAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "last_refreshed_at", "last_full_rebuild_at"]
