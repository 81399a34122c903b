from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path


def crashing_view(request):
    raise RuntimeError("secret internal detail")


urlpatterns = [path("boom/", crashing_view), path("ok/", lambda request: HttpResponse("ok"))]
handler500 = "crm.error_views.server_error"
handler404 = "crm.error_views.not_found"


@override_settings(ROOT_URLCONF="tests.crm.test_error_pages", DEBUG=False)
def test_server_error_shows_our_page_without_a_stack_trace(db):
    response = Client(raise_request_exception=False).get("/boom/")

    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in page
    assert "secret internal detail" not in page and "Traceback" not in page


def test_unknown_page_is_a_friendly_404(db):
    response = Client().get("/no/such/page/")

    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


def test_forbidden_page_says_why(workspace, make_member_client):
    viewer = make_member_client(workspace, "viewer")

    response = viewer.get(f"/w/{workspace.slug}/settings/")

    assert response.status_code == 403
    assert "Your role cannot manage workspace" in response.content.decode()
