"""Ticket services: opening, replying by email, notes, status changes, the timeline, sanitising, attachments."""

import pytest
from django.core import mail
from django_scopes import scope

from crm.exceptions import DomainError
from customers.models import Customer, Event
from support import services
from support.models import DeliveryStatus, MessageKind, Ticket, TicketStatus
from support.services import IncomingFile
from tests.support.factories import CannedReplyFactory, TicketFactory


def open_ticket(workspace, customer, **kwargs):
    defaults = {"subject": "Where is my parcel?", "body_text": "It has been 10 days.", "customer": customer}
    return services.ticket_create(workspace=workspace, **{**defaults, **kwargs})


def test_opening_a_ticket_numbers_it_routes_it_and_puts_it_on_the_timeline(in_scope, customer, rep):
    ticket = open_ticket(in_scope, customer)

    assert ticket.number == 1001
    assert ticket.requester_email == "jane@shopper.test"
    assert ticket.assignee == rep and ticket.status == TicketStatus.OPEN
    assert ticket.first_response_due_at is not None and ticket.resolution_due_at > ticket.first_response_due_at
    assert list(Event.objects.filter(customer=customer).values_list("type", flat=True)) == ["ticket_opened"]
    assert Customer.objects.get(pk=customer.pk).open_tickets_count == 1
    assert open_ticket(in_scope, customer).number == 1002


def test_ticket_bodies_are_sanitised(in_scope, customer):
    ticket = open_ticket(
        in_scope,
        customer,
        body_text="",
        body_html='<p onclick="steal()">Hi<script>alert(1)</script><img src="x" onerror="boom()">'
        '<a href="javascript:alert(1)">link</a><iframe src="https://evil.test"></iframe></p>',
    )

    body = ticket.messages.get().body_html
    assert "<script" not in body and "onclick" not in body and "onerror" not in body
    assert "javascript:" not in body and "<iframe" not in body
    assert body.startswith("<p>Hi")


def test_plain_text_is_escaped_not_interpreted(in_scope, customer):
    ticket = open_ticket(in_scope, customer, body_text="<b>bold?</b> & more")

    assert ticket.messages.get().body_html == "<p>&lt;b&gt;bold?&lt;/b&gt; &amp; more</p>"


def test_reply_is_emailed_with_reference_and_threading_headers(
    in_scope, customer, rep, email_backend, django_capture_on_commit_callbacks
):
    ticket = open_ticket(in_scope, customer, email_message_id="<first@shopper.test>")

    with django_capture_on_commit_callbacks(execute=True):
        reply = services.ticket_reply(workspace=in_scope, ticket=ticket, author=rep.user, body="It ships today.")

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["jane@shopper.test"]
    assert sent.subject == f"Re: Where is my parcel? [#{ticket.number}]"
    assert sent.extra_headers["Message-ID"] == reply.email_message_id
    assert sent.extra_headers["In-Reply-To"] == "<first@shopper.test>"
    assert sent.extra_headers["References"] == "<first@shopper.test>"
    assert "It ships today." in sent.body
    reply.refresh_from_db()
    ticket.refresh_from_db()
    assert reply.delivery_status == DeliveryStatus.SENT
    assert ticket.first_responded_at == reply.created_at
    assert list(Event.objects.filter(customer=customer).order_by("id").values_list("type", flat=True)) == [
        "ticket_opened",
        "ticket_replied",
    ]


def test_internal_note_is_never_emailed(in_scope, customer, rep, email_backend, django_capture_on_commit_callbacks):
    ticket = open_ticket(in_scope, customer)

    with django_capture_on_commit_callbacks(execute=True):
        note = services.ticket_note_add(workspace=in_scope, ticket=ticket, author=rep.user, body="VIP, be nice")

    assert note.kind == MessageKind.NOTE
    assert mail.outbox == []
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None


def test_a_viewer_cannot_reply(in_scope, customer):
    from tests.factories import MembershipFactory

    viewer = MembershipFactory(workspace=in_scope, role="viewer").user
    ticket = open_ticket(in_scope, customer)

    with pytest.raises(DomainError, match="Only support members"):
        services.ticket_reply(workspace=in_scope, ticket=ticket, author=viewer, body="hi")


def test_solving_records_the_event_schedules_csat_and_updates_open_count(in_scope, customer, rep):
    ticket = open_ticket(in_scope, customer)

    services.ticket_status_set(workspace=in_scope, ticket=ticket, status=TicketStatus.SOLVED, actor=rep.user)

    ticket.refresh_from_db()
    assert ticket.solved_at is not None
    assert ticket.surveys.get().kind == "csat"
    assert Customer.objects.get(pk=customer.pk).open_tickets_count == 0
    assert Event.objects.filter(customer=customer, type="ticket_solved").count() == 1


def test_customer_reply_reopens_a_solved_ticket(in_scope, customer, rep):
    ticket = open_ticket(in_scope, customer)
    services.ticket_status_set(workspace=in_scope, ticket=ticket, status=TicketStatus.SOLVED)

    services.ticket_customer_message_add(workspace=in_scope, ticket=ticket, body_text="Still not here!")

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN and ticket.solved_at is None
    assert Customer.objects.get(pk=customer.pk).open_tickets_count == 1


@pytest.mark.parametrize(
    ("incoming", "message"),
    [
        (
            IncomingFile(filename="run.exe", content_type="application/x-msdownload", content=b"MZ"),
            "run.exe: files of type",
        ),
        (
            IncomingFile(filename="big.pdf", content_type="application/pdf", content=b"0" * (10 * 1024 * 1024 + 1)),
            "big.pdf is 10.0 MB; the limit is 10 MB",
        ),
    ],
)
def test_attachments_outside_the_limits_are_refused_with_the_file_name(in_scope, customer, rep, incoming, message):
    ticket = open_ticket(in_scope, customer)

    with pytest.raises(DomainError, match=message):
        services.ticket_note_add(
            workspace=in_scope, ticket=ticket, author=rep.user, body="see file", attachments=[incoming]
        )
    assert ticket.messages.count() == 1


def test_attachment_within_limits_is_stored_and_sent_with_the_reply(
    in_scope, customer, rep, email_backend, django_capture_on_commit_callbacks
):
    ticket = open_ticket(in_scope, customer)
    label = IncomingFile(filename="return label.pdf", content_type="application/pdf", content=b"%PDF-1.4 label")

    with django_capture_on_commit_callbacks(execute=True):
        reply = services.ticket_reply(
            workspace=in_scope, ticket=ticket, author=rep.user, body="Label attached", attachments=[label]
        )

    stored = reply.attachments.get()
    assert (stored.filename, stored.size, stored.content_type) == ("return label.pdf", 14, "application/pdf")
    assert mail.outbox[0].attachments[0][0] == "return label.pdf"
    assert mail.outbox[0].attachments[0][1] == b"%PDF-1.4 label"


def test_canned_reply_fills_only_known_merge_fields(in_scope, customer, rep):
    ticket = open_ticket(in_scope, customer)
    canned = CannedReplyFactory(
        workspace=in_scope, body="Hi {{ customer.first_name }}, re #{{ticket.number}} {{ settings.SECRET_KEY }}"
    )

    text = services.canned_reply_render(canned=canned, ticket=ticket, agent=rep.user)

    assert text == f"Hi Jane, re #{ticket.number} {{{{ settings.SECRET_KEY }}}}"


def test_bulk_close_goes_through_each_ticket(in_scope, customer, rep):
    tickets = [open_ticket(in_scope, customer) for _ in range(3)]

    result = services.tickets_bulk_update(
        workspace=in_scope, ticket_ids=[t.pk for t in tickets[:2]], actor=rep.user, status=TicketStatus.CLOSED
    )

    assert result.changed == 2
    assert sorted(Ticket.objects.values_list("status", flat=True)) == ["closed", "closed", "open"]
    assert Event.objects.filter(type="ticket_solved").count() == 2
    assert Customer.objects.get(pk=customer.pk).open_tickets_count == 1


def test_bulk_ignores_other_workspaces_tickets(in_scope, other_workspace, rep):
    foreign = TicketFactory(workspace=other_workspace)

    with pytest.raises(DomainError, match="Select at least one ticket"):
        services.tickets_bulk_update(workspace=in_scope, ticket_ids=[foreign.pk], actor=rep.user, status="closed")
    with scope(workspace=other_workspace):
        foreign.refresh_from_db()
    assert foreign.status == "new"


def test_changing_priority_recomputes_due_times(in_scope, customer):
    ticket = open_ticket(in_scope, customer, priority="low")
    before = ticket.first_response_due_at

    services.ticket_properties_update(
        workspace=in_scope, ticket=ticket, priority="urgent", tags=["Refund", "refund", " damaged "]
    )

    assert ticket.first_response_due_at < before
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["damaged", "refund"]
