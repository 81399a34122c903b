"""Endpoints the outside world calls: store webhooks and storefront tracking. No session, no CSRF (each request
proves itself: an HMAC signature, or a public key limited by origin and rate); every one opens its workspace's scope
itself once it knows the workspace."""

import hashlib
import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_scopes import scope

from integrations import selectors, tracking, webhooks

MAX_TRACKING_BODY = 512 * 1024


def _delivery_id(*candidates: str | None, topic: str, body: bytes) -> str:
    for value in candidates:
        if value:
            return value
    return "sha256:" + hashlib.sha256(topic.encode() + b"\n" + body).hexdigest()


def _receive(
    request: HttpRequest,
    *,
    platform: str,
    token: str,
    signature_header: str,
    topic_header: str,
    id_headers: tuple[str, ...],
) -> HttpResponse:
    connection = selectors.connection_by_webhook_token(platform=platform, token=token)
    if connection is None:
        return JsonResponse({"error": "unknown webhook address"}, status=404)
    body = request.body
    if (
        platform == "woocommerce"
        and not request.headers.get(signature_header)
        and webhooks.is_woocommerce_ping(body, request.content_type or "")
    ):
        return JsonResponse({"ok": True, "ping": True})  # the creation ping: acknowledged, nothing else
    with scope(workspace=connection.workspace):
        # The signature is checked on the raw bytes before anything is parsed.
        if not webhooks.signature_is_valid(
            secrets=connection.webhook_secrets(), body=body, signature=request.headers.get(signature_header, "")
        ):
            return JsonResponse({"error": "invalid or missing signature"}, status=401)
        topic = request.headers.get(topic_header, "")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return JsonResponse({"error": "the body is not JSON"}, status=400)
        if not topic or not isinstance(payload, dict):
            return JsonResponse({"error": f"missing {topic_header} header or not a JSON object"}, status=400)
        delivery_id = _delivery_id(*(request.headers.get(name) for name in id_headers), topic=topic, body=body)
        receipt = webhooks.webhook_record(
            workspace=connection.workspace, connection=connection, delivery_id=delivery_id, topic=topic, payload=payload
        )
    return JsonResponse({"ok": True, "duplicate": not receipt.is_new})


@csrf_exempt
@require_POST
def shopify_webhook(request: HttpRequest, token: str) -> HttpResponse:
    return _receive(
        request,
        platform="shopify",
        token=token,
        signature_header="X-Shopify-Hmac-Sha256",
        topic_header="X-Shopify-Topic",
        id_headers=("X-Shopify-Event-Id", "X-Shopify-Webhook-Id"),
    )


@csrf_exempt
@require_POST
def woocommerce_webhook(request: HttpRequest, token: str) -> HttpResponse:
    return _receive(
        request,
        platform="woocommerce",
        token=token,
        signature_header="X-WC-Webhook-Signature",
        topic_header="X-WC-Webhook-Topic",
        id_headers=("X-WC-Webhook-Delivery-ID",),
    )


@require_GET
def tracker_js(request: HttpRequest, public_key: str) -> HttpResponse:
    settings_row = tracking.tracking_for_key(public_key)
    if settings_row is None:
        return HttpResponse("/* unknown tracking key */", content_type="application/javascript", status=404)
    endpoint = request.build_absolute_uri(f"/t/{settings_row.public_key}/batch")
    response = render(
        request, "integrations/tracker.js", {"endpoint": endpoint}, content_type="application/javascript; charset=utf-8"
    )
    response["Cache-Control"] = "public, max-age=300"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _cors(response: HttpResponse, origin: str | None) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin or "*"
    response["Vary"] = "Origin"
    return response


@csrf_exempt
def tracking_batch(request: HttpRequest, public_key: str) -> HttpResponse:
    origin = request.headers.get("Origin")
    settings_row = tracking.tracking_for_key(public_key)
    if settings_row is None or not settings_row.is_enabled:
        return _cors(JsonResponse({"error": "unknown or disabled tracking key"}, status=404), origin)
    allowed = settings_row.origins()
    if origin and allowed and origin.rstrip("/") not in allowed:
        return JsonResponse({"error": f"origin {origin} is not allowed for this key"}, status=403)
    if request.method == "OPTIONS":
        response = _cors(HttpResponse(status=204), origin)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "86400"
        return response
    if request.method != "POST":
        return _cors(JsonResponse({"error": "use POST"}, status=405), origin)
    if len(request.body) > MAX_TRACKING_BODY:
        return _cors(JsonResponse({"error": f"the batch is larger than {MAX_TRACKING_BODY} bytes"}, status=413), origin)
    try:
        events = tracking.batch_parse(request.body)
    except tracking.BatchInvalid as invalid:
        return _cors(
            JsonResponse(
                {"error": str(invalid.errors[0]), "errors": [e.as_dict() for e in invalid.errors]}, status=400
            ),
            origin,
        )
    wait = tracking.rate_limit_take(public_key=settings_row.public_key, count=len(events))
    if wait is not None:
        response = JsonResponse({"error": "too many events for this key; slow down", "retry_after": wait}, status=429)
        response["Retry-After"] = str(wait)
        return _cors(response, origin)
    workspace = settings_row.workspace
    with scope(workspace=workspace):
        accepted = tracking.events_ingest(workspace=workspace, tracking=settings_row, events=events)
    return _cors(JsonResponse({"accepted": accepted}, status=202), origin)
