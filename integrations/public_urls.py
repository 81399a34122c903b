"""Public endpoints, mounted at the site root: store webhooks and the storefront tracking snippet and API."""

from django.urls import path

from integrations import public_views

app_name = "integrations_public"
urlpatterns = [
    path("hooks/shopify/<str:token>/", public_views.shopify_webhook, name="shopify_webhook"),
    path("hooks/woocommerce/<str:token>/", public_views.woocommerce_webhook, name="woocommerce_webhook"),
    path("t/<str:public_key>/tracker.js", public_views.tracker_js, name="tracker_js"),
    path("t/<str:public_key>/batch", public_views.tracking_batch, name="tracking_batch"),
]
