from django.urls import path

from support import public_views

app_name = "support_public"
urlpatterns = [
    path("support/contact/<slug:slug>/", public_views.contact, name="contact"),
    path("support/survey/<str:token>/", public_views.survey_page, name="survey"),
    path("support/survey/<str:token>/<int:score>/", public_views.survey_answer, name="survey_answer"),
    path("support/inbound/<str:token>/<str:esp>/", public_views.inbound_webhook, name="inbound"),
]
