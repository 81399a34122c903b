from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return render(
        request,
        "section_empty.html",
        {"title": "Segments", "icon": "bi-diagram-3", "text": "Build audiences from RFM groups and rules."},
    )
