"""The inbox and ticket pages: full pages, htmx partials, actions without leaving the page, roles, other workspaces."""

import pytest
from django.core import mail
from django_scopes import scope, scopes_disabled

from support.models import Ticket, TicketMessage
from tests.factories import CustomerFactory
from tests.support.factories import AttachmentFactory, CannedReplyFactory, TicketFactory, TicketMessageFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def rep_client(workspace, make_member_client):
    return make_member_client(workspace, "support", "rep@acme.test")


@pytest.fixture
def ticket(workspace, rep_client):
    customer = CustomerFactory(workspace=workspace, email="jane@shopper.test", first_name="Jane")
    ticket = TicketFactory(
        workspace=workspace, customer=customer, subject="Broken zipper", status="open", assignee=rep_client.membership
    )
    TicketMessageFactory(ticket=ticket, body_html="<p>The zipper broke</p>", body_text="The zipper broke")
    return ticket


def url(workspace, path=""):
    return f"/w/{workspace.slug}/support/{path}"


def test_inbox_lists_my_tickets(workspace, rep_client, ticket):
    response = rep_client.get(url(workspace))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Broken zipper" in body and 'id="ticket-pane"' in body


def test_inbox_filter_request_returns_only_the_list_partial(workspace, rep_client, ticket):
    response = rep_client.get(url(workspace) + "?view=all&q=zipper", HTTP_HX_TARGET="ticket-list", **HTMX)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="ticket-list"')
    assert "<html" not in body and "Broken zipper" in body
    empty = rep_client.get(url(workspace) + "?view=all&q=nothing-like-it", HTTP_HX_TARGET="ticket-list", **HTMX)
    assert "Broken zipper" not in empty.content.decode()


def test_ticket_opens_as_a_pane_in_the_inbox(workspace, rep_client, ticket):
    response = rep_client.get(url(workspace, f"tickets/{ticket.pk}/"), **HTMX)

    body = response.content.decode()
    assert "<html" not in body
    assert "The zipper broke" in body and 'data-testid="reply-body"' in body


def test_reply_from_the_pane_emails_the_customer_and_rerenders_it(
    workspace, rep_client, ticket, email_backend, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = rep_client.post(
            url(workspace, f"tickets/{ticket.pk}/reply/"), {"body": "A new one is on its way.", "kind": "reply"}, **HTMX
        )

    assert response.status_code == 200
    assert response["HX-Trigger"] == "tickets-changed"
    assert "A new one is on its way." in response.content.decode()
    assert [m.to for m in mail.outbox] == [["jane@shopper.test"]]
    assert mail.outbox[0].subject == f"Re: Broken zipper [#{ticket.number}]"


def test_send_and_solve(workspace, rep_client, ticket, email_backend):
    rep_client.post(url(workspace, f"tickets/{ticket.pk}/reply/"), {"body": "Done.", "then_status": "solved"}, **HTMX)

    with scope(workspace=workspace):
        assert Ticket.objects.get(pk=ticket.pk).status == "solved"


def test_empty_reply_shows_the_error_in_the_pane(workspace, rep_client, ticket):
    response = rep_client.post(url(workspace, f"tickets/{ticket.pk}/reply/"), {"body": "  "}, **HTMX)

    assert response.status_code == 422
    assert 'data-testid="reply-error"' in response.content.decode()


def test_note_reassign_and_solve_without_leaving_the_page(workspace, rep_client, ticket, make_member_client):
    other_rep = make_member_client(workspace, "support", "sam@acme.test").membership

    rep_client.post(url(workspace, f"tickets/{ticket.pk}/reply/"), {"body": "Check stock", "kind": "note"}, **HTMX)
    rep_client.post(url(workspace, f"tickets/{ticket.pk}/assign/"), {"assignee": other_rep.pk}, **HTMX)
    response = rep_client.post(url(workspace, f"tickets/{ticket.pk}/status/"), {"status": "solved"}, **HTMX)

    assert response.status_code == 200 and "<html" not in response.content.decode()
    with scope(workspace=workspace):
        ticket.refresh_from_db()
        assert (ticket.assignee_id, ticket.status) == (other_rep.pk, "solved")
        assert ticket.messages.filter(kind="note", body_text="Check stock").exists()


def test_bulk_assign_returns_the_refreshed_list(workspace, rep_client, ticket, make_member_client):
    other = make_member_client(workspace, "support", "sam@acme.test").membership
    second = TicketFactory(workspace=workspace, status="open")

    response = rep_client.post(
        url(workspace, "bulk/") + "?view=all",
        {"ticket_ids": [ticket.pk, second.pk], "action": f"assign:{other.pk}"},
        **HTMX,
    )

    assert response.status_code == 200
    assert "2 tickets updated." in response.content.decode()
    with scope(workspace=workspace):
        assert set(Ticket.objects.values_list("assignee_id", flat=True)) == {other.pk}


def test_bulk_without_selection_or_action_says_so(workspace, rep_client, ticket):
    nothing_checked = rep_client.post(url(workspace, "bulk/"), {"action": "status:closed"}, **HTMX)
    no_action = rep_client.post(url(workspace, "bulk/"), {"ticket_ids": [ticket.pk], "action": ""}, **HTMX)

    assert "Select tickets first." in nothing_checked.content.decode()
    assert "Choose an action" in no_action.content.decode()
    with scope(workspace=workspace):
        assert Ticket.objects.get(pk=ticket.pk).status == "open"


def test_canned_reply_is_filled_into_the_reply_box(workspace, rep_client, ticket):
    canned = CannedReplyFactory(workspace=workspace)

    response = rep_client.get(url(workspace, f"tickets/{ticket.pk}/canned/{canned.pk}/"), **HTMX)

    assert "Hi Jane, parcels take 3-5 days." in response.content.decode()


def test_viewer_can_read_but_not_reply(workspace, make_member_client, ticket, email_backend):
    viewer = make_member_client(workspace, "viewer")

    assert viewer.get(url(workspace, f"tickets/{ticket.pk}/")).status_code == 200
    response = viewer.post(url(workspace, f"tickets/{ticket.pk}/reply/"), {"body": "hi"})

    assert response.status_code == 403
    assert mail.outbox == []
    with scope(workspace=workspace):
        assert TicketMessage.objects.filter(ticket=ticket).count() == 1


def test_marketer_cannot_open_support_settings(workspace, make_member_client):
    assert make_member_client(workspace, "marketer").get(url(workspace, "settings/")).status_code == 403


def test_cannot_access_other_workspace_ticket(workspace, other_workspace, rep_client, email_backend):
    foreign = TicketFactory(workspace=other_workspace, subject="Globex secret")
    attachment = AttachmentFactory(
        message__ticket=foreign, message__workspace=other_workspace, workspace=other_workspace
    )

    assert rep_client.get(url(workspace, f"tickets/{foreign.pk}/")).status_code == 404
    assert rep_client.post(url(workspace, f"tickets/{foreign.pk}/reply/"), {"body": "x"}).status_code == 404
    assert rep_client.post(url(workspace, f"tickets/{foreign.pk}/status/"), {"status": "closed"}).status_code == 404
    assert rep_client.get(url(workspace, f"attachments/{attachment.pk}/")).status_code == 404
    inbox = rep_client.get(url(workspace) + "?view=all&status=any")
    assert "Globex secret" not in inbox.content.decode()
    assert mail.outbox == []
    with scopes_disabled():
        foreign.refresh_from_db()
        assert foreign.status == "new" and foreign.messages.count() == 1  # only the attachment's


def test_member_of_another_workspace_cannot_see_the_inbox(workspace, other_workspace, make_member_client, ticket):
    outsider = make_member_client(other_workspace, "owner")

    assert outsider.get(url(workspace)).status_code == 404
    assert outsider.get(url(workspace, f"tickets/{ticket.pk}/")).status_code == 404


def test_dashboard_renders_figures(workspace, rep_client, ticket):
    response = rep_client.get(url(workspace, "dashboard/"))

    assert response.status_code == 200
    assert 'data-kpi="volume">1<' in response.content.decode()


def test_settings_page_saves_sla_targets(workspace, owner_client):
    data = {"section": "sla"}
    for priority, first, resolution in [
        ("low", 600, 3000),
        ("normal", 240, 960),
        ("high", 60, 480),
        ("urgent", 30, 120),
    ]:
        data[f"{priority}_first"], data[f"{priority}_resolution"] = first, resolution

    response = owner_client.post(url(workspace, "settings/"), data)

    assert response.status_code == 302
    from support.services import sla_targets

    with scope(workspace=workspace):
        assert sla_targets(workspace=workspace, priority="urgent") == (30, 120)
    assert owner_client.get(url(workspace, "settings/")).status_code == 200


def test_attachment_download(workspace, rep_client, ticket):
    with scopes_disabled():
        message = ticket.messages.first()
    attachment = AttachmentFactory(message=message, workspace=workspace)

    response = rep_client.get(url(workspace, f"attachments/{attachment.pk}/"))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"receipt"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_customer_page_shows_the_support_card(workspace, rep_client, ticket):
    with scopes_disabled():
        customer = ticket.customer
    Customer = type(customer)
    with scope(workspace=workspace):
        Customer.objects.filter(pk=customer.pk).update(open_tickets_count=1, last_csat_score=4, last_nps_score=3)

    response = rep_client.get(f"/w/{workspace.slug}/customers/{customer.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="support-card"' in body
    assert "1 open ticket<" in body and "CSAT 4/5" in body and "NPS 3 (detractor)" in body
    assert f"#{ticket.number} Broken zipper" in body


def test_rep_opens_a_phone_ticket_for_a_new_caller(workspace, rep_client):
    response = rep_client.post(
        url(workspace, "new/"),
        {
            "email": "Caller@Phone.test",
            "name": "Cal Ler",
            "subject": "Called about returns",
            "body": "Wants a label",
            "channel": "phone",
            "priority": "high",
            "category": "Returns & refunds",
        },
    )

    with scope(workspace=workspace):
        ticket = Ticket.objects.get()
        assert (ticket.channel, ticket.priority, ticket.requester_email) == ("phone", "high", "caller@phone.test")
        assert ticket.customer.email == "caller@phone.test"
    assert response.status_code == 302 and response["Location"].endswith(f"/tickets/{ticket.pk}/")


def test_new_ticket_form_names_bad_fields(workspace, rep_client):
    response = rep_client.post(url(workspace, "new/"), {"email": "nope", "subject": "", "body": "x"})

    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    with scope(workspace=workspace):
        assert Ticket.objects.count() == 0
