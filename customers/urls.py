from django.urls import path

from customers import views, views_data

app_name = "customers"
urlpatterns = [
    path("", views.customer_list, name="list"),
    path("export.csv", views.customer_export, name="export"),
    path("bulk/tag/", views.customer_bulk_tag, name="bulk_tag"),
    path("<int:customer_id>/", views.customer_detail, name="detail"),
    path("<int:customer_id>/timeline/", views.customer_timeline, name="timeline"),
    path("<int:customer_id>/orders/", views.customer_orders, name="orders"),
    path("<int:customer_id>/notes/", views.note_create, name="note_create"),
    path("<int:customer_id>/edit/", views.customer_edit, name="edit"),
    path("<int:customer_id>/consent/", views.customer_consent, name="consent"),
    path("<int:customer_id>/tags/", views.customer_tag, name="tag"),
    path("<int:customer_id>/gdpr/export/", views_data.gdpr_export, name="gdpr_export"),
    path("<int:customer_id>/gdpr/erase/", views_data.gdpr_erase, name="gdpr_erase"),
    path("notes/<int:note_id>/", views.note_update, name="note_update"),
    path("imports/", views_data.import_list, name="imports"),
    path("imports/<int:import_id>/", views_data.import_detail, name="import_detail"),
    path("imports/<int:import_id>/progress/", views_data.import_progress, name="import_progress"),
    path("duplicates/", views_data.duplicate_list, name="duplicates"),
    path("duplicates/merge/", views_data.duplicate_merge, name="merge"),
    path("merges/<int:audit_id>/undo/", views_data.merge_undo, name="merge_undo"),
]
