from django.urls import path

from segments import views

app_name = "segments"
urlpatterns = [
    path("", views.list, name="list"),
    path("new/", views.segment_new, name="new"),
    path("builder/", views.builder_preview, name="builder_preview"),
    path("starters/", views.starters_create, name="starters"),
    path("import/", views.segment_import, name="import"),
    path("rfm/", views.rfm_page, name="rfm"),
    path("rfm/rescore/", views.rfm_rescore, name="rfm_rescore"),
    path("rfm/settings/", views.rfm_settings, name="rfm_settings"),
    path("<int:segment_id>/", views.segment_detail, name="detail"),
    path("<int:segment_id>/edit/", views.segment_edit, name="edit"),
    path("<int:segment_id>/rename/", views.segment_rename, name="rename"),
    path("<int:segment_id>/duplicate/", views.segment_duplicate, name="duplicate"),
    path("<int:segment_id>/delete/", views.segment_delete, name="delete"),
    path("<int:segment_id>/refresh/", views.segment_refresh, name="refresh"),
    path("<int:segment_id>/export.csv", views.segment_export, name="export"),
]
