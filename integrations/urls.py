from django.urls import path

from integrations import views

app_name = "integrations"
urlpatterns = [
    path("", views.list, name="list"),
    path("connections/add/", views.connection_add, name="connection_add"),
    path("connections/<int:connection_id>/", views.connection, name="connection"),
    path("connections/<int:connection_id>/check/", views.connection_check, name="connection_check"),
    path("connections/<int:connection_id>/pause/", views.connection_pause, name="connection_pause"),
    path("connections/<int:connection_id>/remove/", views.connection_remove, name="connection_remove"),
    path("connections/<int:connection_id>/sync/", views.connection_sync, name="connection_sync"),
    path("connections/<int:connection_id>/reconcile/", views.connection_reconcile, name="connection_reconcile"),
    path("connections/<int:connection_id>/secret/", views.connection_rotate_secret, name="connection_rotate_secret"),
    path("connections/<int:connection_id>/runs/<int:run_id>/progress/", views.run_progress, name="run_progress"),
    path("connections/<int:connection_id>/runs/<int:run_id>/resume/", views.run_resume, name="run_resume"),
    path("tracking/", views.tracking_update, name="tracking_update"),
    path("tracking/rotate/", views.tracking_rotate, name="tracking_rotate"),
]
