from django.contrib import admin

from support.models import (
    CannedReply,
    RoutingRule,
    SlaPolicy,
    SupportSettings,
    Survey,
    Team,
    TeamMember,
    Ticket,
    TicketMessage,
)


class TeamMemberInline(admin.TabularInline):
    model = TeamMember
    extra = 0
    raw_id_fields = ["membership"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace"]
    list_filter = ["workspace"]
    inlines = [TeamMemberInline]


class TicketMessageInline(admin.StackedInline):
    model = TicketMessage
    extra = 0
    fields = ["kind", "author", "body_text", "email_message_id", "delivery_status", "created_at"]
    readonly_fields = fields


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["number", "subject", "workspace", "status", "priority", "channel", "assignee", "created_at"]
    list_filter = ["workspace", "status", "priority", "channel"]
    search_fields = ["subject", "requester_email"]
    raw_id_fields = ["customer", "order", "assignee", "team"]
    inlines = [TicketMessageInline]


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "position", "condition", "value", "team", "is_active"]
    list_filter = ["workspace"]


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ["kind", "workspace", "customer", "status", "score", "send_after", "answered_at"]
    list_filter = ["workspace", "kind", "status"]
    raw_id_fields = ["customer", "ticket", "order"]


admin.site.register(SlaPolicy)
admin.site.register(CannedReply)
admin.site.register(SupportSettings)
