from django.urls import path

from support import views

app_name = "support"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("new/", views.ticket_new, name="ticket_new"),
    path("bulk/", views.tickets_bulk, name="bulk"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("settings/", views.support_settings, name="settings"),
    path("settings/rules/<int:rule_id>/", views.rule_action, name="rule_action"),
    path("settings/teams/<int:team_id>/delete/", views.team_delete, name="team_delete"),
    path("settings/canned/<int:canned_id>/delete/", views.canned_delete, name="canned_delete"),
    path("tickets/<int:ticket_id>/", views.ticket_detail, name="ticket"),
    path("tickets/<int:ticket_id>/reply/", views.ticket_reply, name="ticket_reply"),
    path("tickets/<int:ticket_id>/assign/", views.ticket_assign, name="ticket_assign"),
    path("tickets/<int:ticket_id>/status/", views.ticket_status, name="ticket_status"),
    path("tickets/<int:ticket_id>/properties/", views.ticket_properties, name="ticket_properties"),
    path("tickets/<int:ticket_id>/canned/<int:canned_id>/", views.canned_reply_fill, name="canned_fill"),
    path("attachments/<int:attachment_id>/", views.attachment_download, name="attachment"),
]
