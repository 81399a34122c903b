"""Django admin for customer data: superusers only, across every workspace.

The tenancy middleware runs admin requests with scopes disabled (only for superusers), so the scoped default
managers work here; every admin class still refuses anyone who is not a superuser, staff or not.
"""

from django.contrib import admin
from django.http import HttpRequest

from customers.models import (
    AuditRecord,
    Cart,
    Customer,
    CustomerTag,
    Event,
    ImportJob,
    Note,
    Order,
    OrderLine,
    Product,
)


class SuperuserOnlyAdmin(admin.ModelAdmin):
    list_select_related = ("workspace",)
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over millions of events on every page is not worth it

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser


class CustomerTagInline(admin.TabularInline):
    model = CustomerTag
    extra = 0
    fields = ("name", "workspace")


@admin.register(Customer)
class CustomerAdmin(SuperuserOnlyAdmin):
    list_display = (
        "id",
        "__str__",
        "email",
        "phone",
        "country",
        "orders_count",
        "total_spent",
        "last_order_at",
        "rfm_group",
        "workspace",
        "source",
        "erased_at",
    )
    list_filter = ("workspace", "source", "email_consent", "country", "rfm_group")
    search_fields = ("email", "first_name", "last_name", "phone", "external_id")
    raw_id_fields = ("merged_into",)
    readonly_fields = (
        "orders_count",
        "total_spent",
        "average_order_value",
        "first_order_at",
        "last_order_at",
        "top_categories",
        "created_at",
        "updated_at",
    )
    inlines = [CustomerTagInline]


@admin.register(Product)
class ProductAdmin(SuperuserOnlyAdmin):
    list_display = ("id", "title", "sku", "category", "price", "is_in_stock", "workspace", "source")
    list_filter = ("workspace", "source", "category", "is_in_stock")
    search_fields = ("title", "sku", "external_id")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ("product",)
    fields = ("title", "sku", "category", "quantity", "unit_price", "discount", "total", "product", "workspace")


@admin.register(Order)
class OrderAdmin(SuperuserOnlyAdmin):
    list_display = (
        "id",
        "number",
        "customer",
        "status",
        "financial_status",
        "total",
        "net_total",
        "currency",
        "placed_at",
        "workspace",
        "source",
    )
    list_filter = ("workspace", "source", "status", "financial_status")
    search_fields = ("number", "external_id", "email")
    raw_id_fields = ("customer",)
    date_hierarchy = "placed_at"
    inlines = [OrderLineInline]


@admin.register(Cart)
class CartAdmin(SuperuserOnlyAdmin):
    list_display = ("id", "external_id", "customer", "status", "value", "currency", "last_activity_at", "workspace")
    list_filter = ("workspace", "status", "source")
    search_fields = ("external_id", "email", "anonymous_id")
    raw_id_fields = ("customer", "recovered_order")


@admin.register(Note)
class NoteAdmin(SuperuserOnlyAdmin):
    list_display = ("id", "customer", "author", "is_pinned", "created_at", "workspace")
    list_filter = ("workspace", "is_pinned")
    search_fields = ("body",)
    raw_id_fields = ("customer", "author")


@admin.register(Event)
class EventAdmin(SuperuserOnlyAdmin):
    list_display = ("id", "type", "customer", "anonymous_id", "occurred_at", "source", "workspace")
    list_filter = ("workspace", "type", "source")
    search_fields = ("external_id", "anonymous_id")
    raw_id_fields = ("customer",)
    date_hierarchy = "occurred_at"


@admin.register(CustomerTag)
class CustomerTagAdmin(SuperuserOnlyAdmin):
    list_display = ("id", "name", "customer", "workspace")
    list_filter = ("workspace",)
    search_fields = ("name",)
    raw_id_fields = ("customer",)


@admin.register(AuditRecord)
class AuditRecordAdmin(SuperuserOnlyAdmin):
    list_display = ("id", "action", "customer_id_ref", "actor", "created_at", "workspace")
    list_filter = ("workspace", "action")
    readonly_fields = ("action", "customer_id_ref", "actor", "data", "created_at", "workspace")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the audit trail is evidence: never edited

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ImportJob)
class ImportJobAdmin(SuperuserOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "original_name",
        "total_rows",
        "imported_rows",
        "rejected_rows",
        "created_at",
        "workspace",
    )
    list_filter = ("workspace", "kind", "status")
    readonly_fields = ("errors",)
