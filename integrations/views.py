from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return render(
        request,
        "section_empty.html",
        {"title": "Integrations", "icon": "bi-plug", "text": "Connect a Shopify or WooCommerce store to bring customers and orders in."},
    )
