"""A deliberately broken urlconf: one view fetches a customer by id with scopes disabled. The tenancy walker
must report it (tests/crm/test_tenancy.py)."""

from django.http import HttpResponse
from django.urls import include, path
from django_scopes import scopes_disabled

from customers.models import Customer


def leaky_customer(request, workspace_slug: str, customer_id: int) -> HttpResponse:
    with scopes_disabled():
        customer = Customer.objects.get(pk=customer_id)
        if request.method == "POST":
            customer.first_name = "Changed"
            customer.save(update_fields=["first_name"])
    return HttpResponse(customer.email)


urlpatterns = [
    path("w/<slug:workspace_slug>/", include([path("leaky/<int:customer_id>/", leaky_customer)])),
]
