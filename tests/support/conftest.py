import pytest
from django_scopes import scope

from tests.factories import CustomerFactory, MembershipFactory


@pytest.fixture
def in_scope(workspace):
    with scope(workspace=workspace):
        yield workspace


@pytest.fixture
def rep(workspace):
    return MembershipFactory(
        workspace=workspace, role="support", user__email="rep@acme.test", user__full_name="Rita Rep"
    )


@pytest.fixture
def customer(workspace):
    return CustomerFactory(workspace=workspace, email="jane@shopper.test", first_name="Jane", last_name="Shopper")


@pytest.fixture
def email_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "Acme <support@acme.test>"
