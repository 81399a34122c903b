from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return render(
        request,
        "section_empty.html",
        {"title": "Customers", "icon": "bi-person-lines-fill", "text": "Your customers appear here once a store is connected or a CSV is imported."},
    )
