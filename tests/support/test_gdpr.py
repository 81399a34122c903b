"""A customer's tickets join the GDPR export and are scrubbed by erasure."""

from customers.gdpr import customer_data_export, customer_erase
from support import services
from support.models import Ticket, TicketMessage
from support.services import IncomingFile


def test_export_includes_tickets_but_not_internal_notes(in_scope, customer, rep):
    ticket = services.ticket_create(
        workspace=in_scope, subject="Broken zipper", body_text="It broke", customer=customer
    )
    services.ticket_note_add(workspace=in_scope, ticket=ticket, author=rep.user, body="Grumpy customer")

    export = customer_data_export(workspace=in_scope, customer=customer)

    tickets = export["support"]["tickets"]
    assert [(t["subject"], [m["text"] for m in t["messages"]]) for t in tickets] == [("Broken zipper", ["It broke"])]


def test_erasure_scrubs_ticket_text_and_files(in_scope, customer, rep):
    ticket = services.ticket_create(
        workspace=in_scope,
        subject="My address is 1 Main St",
        body_text="Call me on 555-0100",
        customer=customer,
        attachments=[IncomingFile(filename="id.png", content_type="image/png", content=b"\x89PNG")],
    )

    customer_erase(workspace=in_scope, customer=customer)

    ticket = Ticket.objects.get(pk=ticket.pk)
    assert (ticket.subject, ticket.requester_email, ticket.requester_name) == ("[erased]", "", "")
    assert list(TicketMessage.objects.values_list("body_text", flat=True)) == ["[erased]"]
    assert not ticket.messages.get().attachments.exists()
