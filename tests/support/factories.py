import factory
from django.utils import timezone

from support.models import Attachment, CannedReply, RoutingRule, Survey, Team, Ticket, TicketMessage
from tests.factories import CustomerFactory, ScopedFactory, WorkspaceFactory


class TeamFactory(ScopedFactory):
    class Meta:
        model = Team

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class TicketFactory(ScopedFactory):
    class Meta:
        model = Ticket

    workspace = factory.SubFactory(WorkspaceFactory)
    customer = factory.SubFactory(CustomerFactory, workspace=factory.SelfAttribute("..workspace"))
    number = factory.Sequence(lambda n: 5000 + n)
    subject = factory.Sequence(lambda n: f"Where is my order {n}?")
    requester_email = factory.LazyAttribute(lambda o: o.customer.email if o.customer else "someone@example.org")
    created_at = factory.LazyFunction(timezone.now)


class TicketMessageFactory(ScopedFactory):
    class Meta:
        model = TicketMessage

    ticket = factory.SubFactory(TicketFactory)
    workspace = factory.SelfAttribute("ticket.workspace")
    kind = "customer"
    body_html = "<p>Hello</p>"
    body_text = "Hello"
    created_at = factory.LazyFunction(timezone.now)


class AttachmentFactory(ScopedFactory):
    class Meta:
        model = Attachment

    message = factory.SubFactory(TicketMessageFactory)
    workspace = factory.SelfAttribute("message.workspace")
    file = factory.django.FileField(filename="receipt.txt", data=b"receipt")
    filename = "receipt.txt"
    content_type = "text/plain"
    size = 7


class CannedReplyFactory(ScopedFactory):
    class Meta:
        model = CannedReply

    workspace = factory.SubFactory(WorkspaceFactory)
    title = "Shipping times"
    body = "Hi {{ customer.first_name }}, parcels take 3-5 days."


class RoutingRuleFactory(ScopedFactory):
    class Meta:
        model = RoutingRule

    workspace = factory.SubFactory(WorkspaceFactory)
    team = factory.SubFactory(TeamFactory, workspace=factory.SelfAttribute("..workspace"))
    name = "Returns"
    condition = "category"
    value = "Returns & refunds"


class SurveyFactory(ScopedFactory):
    class Meta:
        model = Survey

    workspace = factory.SubFactory(WorkspaceFactory)
    customer = factory.SubFactory(CustomerFactory, workspace=factory.SelfAttribute("..workspace"))
    kind = "csat"
    ticket = factory.SubFactory(
        TicketFactory, workspace=factory.SelfAttribute("..workspace"), customer=factory.SelfAttribute("..customer")
    )
    send_after = factory.LazyFunction(timezone.now)
