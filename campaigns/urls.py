from django.urls import path

from campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_index, name="list"),
    path("new/", views.campaign_create, name="create"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/edit/", views.campaign_edit, name="edit"),
    path("<int:campaign_id>/progress/", views.campaign_progress, name="progress"),
    path("<int:campaign_id>/send/", views.campaign_send, name="send"),
    path("<int:campaign_id>/schedule/", views.campaign_schedule, name="schedule"),
    path("<int:campaign_id>/unschedule/", views.campaign_unschedule, name="unschedule"),
    path("<int:campaign_id>/pause/", views.campaign_pause, name="pause"),
    path("<int:campaign_id>/resume/", views.campaign_resume, name="resume"),
    path("<int:campaign_id>/cancel/", views.campaign_cancel, name="cancel"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/new/", views.template_create, name="template_create"),
    path("templates/preview/", views.template_preview, name="template_preview"),
    path("templates/<int:template_id>/", views.template_edit, name="template_edit"),
    path("flows/", views.flow_list, name="flow_list"),
    path("flows/install/", views.flow_install, name="flow_install"),
    path("flows/new/", views.flow_create, name="flow_create"),
    path("flows/<int:flow_id>/", views.flow_detail, name="flow_detail"),
    path("flows/<int:flow_id>/toggle/", views.flow_toggle, name="flow_toggle"),
    path("flows/<int:flow_id>/settings/", views.flow_settings, name="flow_settings"),
    path("flows/<int:flow_id>/steps/add/", views.flow_step_add, name="flow_step_add"),
    path("flows/<int:flow_id>/steps/<int:step_id>/", views.flow_step_edit, name="flow_step_edit"),
    path("flows/<int:flow_id>/steps/<int:step_id>/move/", views.flow_step_move, name="flow_step_move"),
    path("flows/<int:flow_id>/steps/<int:step_id>/remove/", views.flow_step_remove, name="flow_step_remove"),
    path("settings/", views.sending_settings, name="settings"),
    path("settings/suppressions/<int:suppression_id>/remove/", views.suppression_remove, name="suppression_remove"),
]
