"""Public endpoints reached from inside emails and from ESPs: no login, no cookies, no CSRF token.

- ``e/o/<token>.gif``: the open pixel.
- ``e/c/<token>/?u=<url>&s=<signature>``: click redirect; only to URLs our emails contained (signed).
- ``e/u/<token>/``: unsubscribe. GET shows a confirmation button and never unsubscribes by itself (link scanners
  follow GETs); POST unsubscribes, including RFC 8058 one-click POSTs from mail clients, and answers 200.
- ``e/webhooks/<esp>/``: anymail tracking webhooks (bounce, complaint, unsubscribe) with anymail's basic auth or
  signature check; anything forged answers 401.
"""

import base64
import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns import tracking
from campaigns.rendering import link_signature

logger = logging.getLogger(__name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
ESP_WEBHOOKS = {
    "postmark": "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
    "mailgun": "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
    "sendgrid": "anymail.webhooks.sendgrid.SendGridTrackingWebhookView",
    "brevo": "anymail.webhooks.brevo.BrevoTrackingWebhookView",
    "sparkpost": "anymail.webhooks.sparkpost.SparkPostTrackingWebhookView",
    "mailjet": "anymail.webhooks.mailjet.MailjetTrackingWebhookView",
    "postal": "anymail.webhooks.postal.PostalTrackingWebhookView",
}


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    tracking.message_open(token=token, user_agent=request.headers.get("User-Agent", ""), ip=_client_ip(request))
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, max-age=0"
    return response


def click(request: HttpRequest, token: str) -> HttpResponse:
    url = request.GET.get("u", "")
    signature = request.GET.get("s", "")
    if not url.startswith(("https://", "http://")) or not constant_time_compare(signature, link_signature(url)):
        return HttpResponseBadRequest("This link is not valid.", content_type="text/plain")
    tracking.message_click(token=token, url=url)
    return HttpResponseRedirect(url)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    message = tracking.message_by_token(token)
    if message is None:
        raise Http404("Unknown link")
    context = {"workspace_name": message.workspace.name, "token": token, "done": False}
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        tracking.message_unsubscribe(token=token, source="one_click" if one_click else "page")
        context["done"] = True
    return TemplateResponse(request, "campaigns/public_unsubscribe.html", context)


@csrf_exempt
def esp_webhook(request: HttpRequest, esp: str) -> HttpResponse:
    from anymail.exceptions import AnymailWebhookValidationFailure

    if esp not in ESP_WEBHOOKS:
        raise Http404("Unknown email provider")
    if request.method != "POST":
        return HttpResponse(status=405)
    if not getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"):
        # Fail closed: without a shared secret nobody can be authenticated, so nobody is believed.
        return HttpResponse("Webhook secret not configured", status=401, content_type="text/plain")
    try:
        view = import_string(ESP_WEBHOOKS[esp])()
    except ImproperlyConfigured as error:
        logger.warning("%s webhook not configured: %s", esp, error)
        return HttpResponse("Not configured", status=401, content_type="text/plain")
    try:
        view.run_validators(request)
    except AnymailWebhookValidationFailure:
        return HttpResponse("Unauthorized", status=401, content_type="text/plain")
    applied = 0
    for event in view.parse_events(request):
        metadata = event.metadata or {}
        applied += tracking.esp_event_apply(
            event_type=event.event_type,
            message_id=event.message_id or "",
            token=metadata.get("crm_token", ""),
            recipient=event.recipient or "",
        )
    return HttpResponse(f"ok {applied}", content_type="text/plain")
