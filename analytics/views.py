from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def dashboard(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return render(request, "analytics/dashboard.html", {})
