"""Mounted at the site root: the paths inside sent emails and the ESP webhooks (see campaigns.public_views)."""

from django.urls import path

from campaigns import public_views

urlpatterns = [
    path("e/o/<str:token>.gif", public_views.open_pixel, name="campaigns_open"),
    path("e/c/<str:token>/", public_views.click, name="campaigns_click"),
    path("e/u/<str:token>/", public_views.unsubscribe, name="campaigns_unsubscribe"),
    path("e/webhooks/<slug:esp>/", public_views.esp_webhook, name="campaigns_esp_webhook"),
]
