from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def inbox(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return render(
        request,
        "section_empty.html",
        {"title": "Support", "icon": "bi-life-preserver", "text": "Tickets from your customers land in this inbox."},
    )
