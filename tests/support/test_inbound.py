"""Inbound email: parsing, threading by headers or subject reference, new customers, duplicates, auto-replies,
anymail's inbound webhook and the read_mailbox command."""

import base64
import json
import mailbox
from email.message import EmailMessage

import pytest
from django.core.management import call_command
from django.test import Client
from django_scopes import scope

from customers.models import Customer
from support import services
from support.inbound import inbound_email_process, parse_message
from support.models import Ticket, TicketMessage
from tests.factories import CustomerFactory


def email(
    *,
    sender="Jane Shopper <jane@shopper.test>",
    subject="Parcel missing",
    body="Where is it?",
    message_id="<m1@shopper.test>",
    in_reply_to=None,
    references=None,
    html=None,
    headers=None,
):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@acme.test"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Wed, 18 Nov 2026 10:00:00 +0000"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(body)
    for name, value in (headers or {}).items():  # after set_content, which drops Content-* headers
        msg[name] = value
    if html:
        msg.add_alternative(html, subtype="html")
    return msg


def receive(workspace, msg):
    return inbound_email_process(workspace=workspace, inbound=parse_message(msg))


def test_unknown_sender_becomes_a_customer_and_opens_a_ticket(in_scope):
    result = receive(in_scope, email())

    assert result.is_new_ticket
    customer = Customer.objects.get(email="jane@shopper.test")
    assert (customer.first_name, customer.last_name, customer.source) == ("Jane", "Shopper", "crm")
    assert (result.ticket.customer, result.ticket.subject, result.ticket.channel) == (
        customer,
        "Parcel missing",
        "email",
    )
    assert result.message.email_message_id == "<m1@shopper.test>"
    assert result.message.body_text == "Where is it?"


def test_content_language_routes_a_new_sender_by_language(in_scope):
    from support.models import Team
    from tests.factories import MembershipFactory
    from tests.support.factories import RoutingRuleFactory

    french_rep = MembershipFactory(workspace=in_scope, role="support")
    team = Team.objects.create(workspace=in_scope, name="Francophones")
    services.team_save(workspace=in_scope, name=team.name, member_ids=[french_rep.pk], team=team)
    RoutingRuleFactory(workspace=in_scope, team=team, condition="language", value="fr")

    result = receive(in_scope, email(headers={"Content-Language": "fr-FR"}))

    assert (result.ticket.language, result.ticket.team, result.ticket.assignee) == ("fr-FR", team, french_rep)


def test_known_sender_is_matched_to_the_existing_customer(in_scope):
    existing = CustomerFactory(workspace=in_scope, email="jane@shopper.test")

    result = receive(in_scope, email(sender="JANE@Shopper.test"))

    assert result.ticket.customer == existing
    assert Customer.objects.count() == 1


def test_reply_threads_by_in_reply_to_our_message_id(in_scope, rep, email_backend, django_capture_on_commit_callbacks):
    ticket = receive(in_scope, email()).ticket
    with django_capture_on_commit_callbacks(execute=True):
        ours = services.ticket_reply(workspace=in_scope, ticket=ticket, author=rep.user, body="Checking")

    result = receive(
        in_scope,
        email(
            subject="Re: Parcel missing",
            message_id="<m2@shopper.test>",
            in_reply_to=ours.email_message_id,
            body="Thanks\n\nOn Wed, Support wrote:\n> Checking",
        ),
    )

    assert not result.is_new_ticket and result.ticket == ticket
    assert result.message.body_text == "Thanks"  # the quoted thread is cut
    assert Ticket.objects.count() == 1


def test_reply_threads_by_references_when_in_reply_to_is_unknown(in_scope):
    ticket = receive(in_scope, email()).ticket

    result = receive(
        in_scope,
        email(
            subject="more",
            message_id="<m3@shopper.test>",
            in_reply_to="<unknown@x>",
            references="<m1@shopper.test> <unknown@x>",
        ),
    )

    assert result.ticket == ticket


def test_reply_threads_by_subject_reference_from_the_requester(in_scope):
    ticket = receive(in_scope, email()).ticket

    result = receive(in_scope, email(subject=f"Re: Parcel missing [#{ticket.number}]", message_id="<m4@shopper.test>"))

    assert result.ticket == ticket and not result.is_new_ticket


def test_subject_reference_from_a_stranger_does_not_inject_into_the_ticket(in_scope):
    ticket = receive(in_scope, email()).ticket

    result = receive(
        in_scope, email(sender="mallory@evil.test", subject=f"Re: [#{ticket.number}]", message_id="<evil@evil.test>")
    )

    assert result.is_new_ticket and result.ticket != ticket
    assert ticket.messages.count() == 1


def test_reply_to_a_closed_ticket_opens_a_follow_up(in_scope):
    ticket = receive(in_scope, email()).ticket
    services.ticket_status_set(workspace=in_scope, ticket=ticket, status="closed")

    result = receive(in_scope, email(subject=f"Re: Parcel missing [#{ticket.number}]", message_id="<m5@shopper.test>"))

    assert result.is_new_ticket
    assert result.ticket.subject == f"Follow-up to #{ticket.number}: Parcel missing"


def test_the_same_message_twice_is_stored_once(in_scope):
    first = receive(in_scope, email())

    again = receive(in_scope, email())

    assert again.is_duplicate and again.ticket == first.ticket
    assert TicketMessage.objects.count() == 1


@pytest.mark.parametrize(
    "headers", [{"Auto-Submitted": "auto-replied"}, {"Precedence": "bulk"}, {"X-Autoreply": "yes"}]
)
def test_auto_replies_are_dropped(in_scope, headers):
    result = receive(in_scope, email(headers=headers))

    assert result.is_ignored and Ticket.objects.count() == 0


def test_html_only_email_is_sanitised(in_scope):
    msg = EmailMessage()
    msg["From"] = "jane@shopper.test"
    msg["Subject"] = "HTML"
    msg["Message-ID"] = "<h1@shopper.test>"
    msg.set_content("<p>Hi <b>there</b><script>alert(1)</script><img src=x onerror=alert(2)></p>", subtype="html")

    result = receive(in_scope, msg)

    body = result.message.body_html
    assert "<b>there</b>" in body and "<script" not in body and "onerror" not in body


def test_attachments_are_kept_within_limits(in_scope):
    msg = email()
    msg.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    msg.add_attachment(b"MZ...", maintype="application", subtype="x-msdownload", filename="virus.exe")

    result = receive(in_scope, msg)

    assert list(result.message.attachments.values_list("filename", "content_type")) == [
        ("invoice.pdf", "application/pdf")
    ]


POSTMARK_SECRET = "inbound:s3cret"


def postmark_payload(*, message_id, subject, in_reply_to=""):
    headers = [{"Name": "Message-ID", "Value": message_id}]
    if in_reply_to:
        headers.append({"Name": "In-Reply-To", "Value": in_reply_to})
    return {
        "FromFull": {"Email": "pat@buyer.test", "Name": "Pat Buyer"},
        "ToFull": [{"Email": "support@acme.test", "Name": ""}],
        "Subject": subject,
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "Date": "Wed, 18 Nov 2026 10:00:00 +0000",
        "TextBody": "My order arrived damaged.",
        "HtmlBody": "",
        "Headers": headers,
        "Attachments": [],
    }


@pytest.fixture
def inbound_url(workspace, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": POSTMARK_SECRET}
    with scope(workspace=workspace):
        token = services.support_settings_for(workspace=workspace).inbound_token
    return f"/support/inbound/{token}/postmark/"


def post_postmark(url, payload, secret=POSTMARK_SECRET):
    auth = "Basic " + base64.b64encode(secret.encode()).decode()
    return Client().post(url, json.dumps(payload), content_type="application/json", HTTP_AUTHORIZATION=auth)


def test_anymail_inbound_webhook_opens_and_threads_tickets(workspace, inbound_url):
    response = post_postmark(inbound_url, postmark_payload(message_id="<p1@buyer.test>", subject="Damaged"))

    assert response.status_code == 200
    with scope(workspace=workspace):
        ticket = Ticket.objects.get()
        assert (ticket.subject, ticket.requester_email, ticket.customer.email) == (
            "Damaged",
            "pat@buyer.test",
            "pat@buyer.test",
        )

    post_postmark(
        inbound_url,
        postmark_payload(message_id="<p2@buyer.test>", subject="Re: Damaged", in_reply_to="<p1@buyer.test>"),
    )
    post_postmark(inbound_url, postmark_payload(message_id="<p2@buyer.test>", subject="Re: Damaged"))  # a retry
    with scope(workspace=workspace):
        assert Ticket.objects.count() == 1
        assert ticket.messages.count() == 2


def test_anymail_inbound_webhook_refuses_bad_auth_and_unknown_tokens(workspace, inbound_url):
    bad_auth = post_postmark(inbound_url, postmark_payload(message_id="<p9@buyer.test>", subject="x"), secret="no:no")
    unknown = post_postmark(
        "/support/inbound/not-a-token/postmark/", postmark_payload(message_id="<p8@b>", subject="x")
    )

    assert bad_auth.status_code == 400
    assert unknown.status_code == 404
    with scope(workspace=workspace):
        assert Ticket.objects.count() == 0


def test_read_mailbox_command_reads_mbox_and_maildir(workspace, tmp_path, capsys):
    box = mailbox.mbox(tmp_path / "support.mbox")
    box.add(email())
    box.add(email(subject="Re: Parcel missing", message_id="<m2@shopper.test>", in_reply_to="<m1@shopper.test>"))
    box.add(email(sender="bot@shopper.test", message_id="<ooo@x>", headers={"Auto-Submitted": "auto-replied"}))
    box.flush()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    maildir.add(email(sender="kim@shopper.test", subject="Size exchange", message_id="<k1@shopper.test>"))
    maildir.add(email())  # already read from the mbox

    call_command("read_mailbox", "--workspace", workspace.slug, str(tmp_path / "support.mbox"))
    call_command("read_mailbox", "--workspace", workspace.slug, str(tmp_path / "Maildir"))
    call_command("read_mailbox", "--workspace", workspace.slug, str(tmp_path / "support.mbox"))

    out = capsys.readouterr().out.splitlines()
    assert out == [
        "1 new tickets, 1 replies, 0 duplicates, 1 ignored",
        "1 new tickets, 0 replies, 1 duplicates, 0 ignored",
        "0 new tickets, 0 replies, 2 duplicates, 1 ignored",
    ]
    with scope(workspace=workspace):
        assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["Parcel missing", "Size exchange"]


def test_read_mailbox_names_a_missing_workspace_or_path(workspace, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No workspace with slug 'nope'"):
        call_command("read_mailbox", "--workspace", "nope", str(tmp_path))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("read_mailbox", "--workspace", workspace.slug, str(tmp_path / "missing.mbox"))
