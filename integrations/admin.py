from django.contrib import admin

from integrations.models import StoreConnection, StorefrontTracking, SyncRun, WebhookDelivery


@admin.register(StoreConnection)
class StoreConnectionAdmin(admin.ModelAdmin):
    list_display = ("name", "platform", "workspace", "status", "is_paused", "last_sync_at", "last_error_at")
    list_filter = ("platform", "status", "is_paused")
    search_fields = ("name", "base_url")
    # Secrets stay encrypted and out of the form.
    exclude = ("credentials_encrypted", "webhook_secret_encrypted", "previous_webhook_secret_encrypted")
    readonly_fields = (
        "webhook_token",
        "sync_state",
        "last_sync_at",
        "last_checked_at",
        "last_error",
        "last_error_at",
        "last_webhook_at",
    )


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("id", "connection", "kind", "status", "pages_done", "pages_expected", "created_at", "finished_at")
    list_filter = ("kind", "status")
    readonly_fields = ("cursor", "counts", "errors", "details")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("delivery_id", "connection", "topic", "status", "received_at")
    list_filter = ("status", "topic")
    search_fields = ("delivery_id",)


@admin.register(StorefrontTracking)
class StorefrontTrackingAdmin(admin.ModelAdmin):
    list_display = ("workspace", "public_key", "is_enabled", "events_received", "last_event_at")
