"""In a real browser: a rep answers a ticket from the inbox without leaving the page, and the customer receives the
reply through a real SMTP server; the customer's answer threads back into the same ticket."""

import email.message

import pytest
from django_scopes import scope

from support import services
from support.inbound import inbound_email_process, parse_message
from support.models import Ticket
from tests.conftest import screenshot
from tests.factories import CustomerFactory, MembershipFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e]


def test_rep_answers_in_the_browser_and_the_customer_gets_the_email(
    transactional_db, live_server, browser_page, smtp_server, settings
):
    # given a real SMTP server as the project's email backend
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "Acme <support@acme.test>"
    # and a ticket that came in by email, routed to the only rep
    workspace = WorkspaceFactory(name="Acme Outfitters", slug="acme")
    rep = MembershipFactory(
        workspace=workspace, role="support", user__email="rita@acme.test", user__full_name="Rita Rep"
    )
    customer = CustomerFactory(workspace=workspace, email="jane@shopper.test", first_name="Jane", last_name="Shopper")
    with scope(workspace=workspace):
        ticket = services.ticket_create(
            workspace=workspace,
            subject="My jacket has a broken zipper",
            customer=customer,
            body_html="<p>The zipper broke on day two.<script>alert('x')</script></p>",
            email_message_id="<original@shopper.test>",
        )
    assert ticket.assignee == rep
    page = browser_page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # when the rep signs in, opens the ticket from the inbox and replies
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "rita@acme.test")
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("button[type=submit]")
    page.goto("/w/acme/support/")
    page.click(f"[data-ticket-row='{ticket.number}'] a[data-open-ticket]")
    page.wait_for_selector("[data-testid=reply-body]")
    assert "The zipper broke on day two." in page.inner_text("[data-testid=conversation]")
    page.fill("[data-testid=reply-body]", "Sorry about that, Jane! A replacement ships today.")
    page.click("[data-testid=send-reply]")
    page.wait_for_selector("[data-kind=reply] >> text=A replacement ships today.")

    # then the page never reloaded (still the inbox URL) and the reply shows as emailed
    assert page.url.endswith("/w/acme/support/")
    assert page.locator("[data-kind=reply] .bi-check2-all").count() == 1
    screenshot(page, "support-inbox-reply")
    assert dialogs == []  # the customer's <script> never ran

    # and the customer received it through SMTP, threaded onto their email
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received["to"] == ["jane@shopper.test"]
    message: email.message.Message = received["message"]
    assert message["Subject"] == f"Re: My jacket has a broken zipper [#{ticket.number}]"
    assert message["In-Reply-To"] == "<original@shopper.test>"
    assert "A replacement ships today." in message.get_payload(0).get_payload(decode=True).decode()

    # when the customer answers that email, it lands in the same ticket
    answer = email.message.EmailMessage()
    answer["From"] = "Jane Shopper <jane@shopper.test>"
    answer["Subject"] = "Re: " + message["Subject"]
    answer["Message-ID"] = "<thanks@shopper.test>"
    answer["In-Reply-To"] = message["Message-ID"]
    answer.set_content("Great, thank you!")
    with scope(workspace=workspace):
        result = inbound_email_process(workspace=workspace, inbound=parse_message(answer))
        assert result.ticket == ticket and Ticket.objects.count() == 1

    # and the rep solves it from the same pane
    page.click(f"[data-ticket-row='{ticket.number}'] a[data-open-ticket]")
    page.wait_for_selector("text=Great, thank you!")
    page.click("[data-testid=solve]")
    page.wait_for_selector("[data-testid=ticket-status] >> text=Solved")
    with scope(workspace=workspace):
        assert Ticket.objects.get(pk=ticket.pk).status == "solved"
    screenshot(page, "support-ticket-solved")
