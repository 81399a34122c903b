from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return render(
        request,
        "section_empty.html",
        {"title": "Campaigns", "icon": "bi-envelope-paper", "text": "Email campaigns and automated flows live here."},
    )
