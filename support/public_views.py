"""Pages reached without signing in: the contact form, survey answers and the inbound email webhook.

No workspace in the session here, so each view finds its workspace from the URL (a slug or an unguessable token)
with scopes disabled for that one lookup and then runs inside that workspace's scope.
"""

import logging

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django_scopes import scope, scopes_disabled

from crm.exceptions import DomainError
from crm.models import Workspace
from support import selectors, services, surveys
from support.forms import ContactForm, SurveyCommentForm
from support.inbound import customer_for_email, inbound_email_process, parse_message
from support.models import SupportSettings, TicketChannel

logger = logging.getLogger(__name__)

CONTACT_RATE_LIMIT = 5  # submissions per address per workspace...
CONTACT_RATE_WINDOW = 600  # ...in this many seconds

# anymail's inbound webhook view for each ESP we accept at /support/inbound/<token>/<esp>/
INBOUND_VIEWS = {
    "postmark": "anymail.webhooks.postmark.PostmarkInboundWebhookView",
    "mailgun": "anymail.webhooks.mailgun.MailgunInboundWebhookView",
    "mailersend": "anymail.webhooks.mailersend.MailerSendInboundWebhookView",
    "brevo": "anymail.webhooks.brevo.BrevoInboundWebhookView",
    "resend": "anymail.webhooks.resend.ResendInboundWebhookView",
    "sparkpost": "anymail.webhooks.sparkpost.SparkPostInboundWebhookView",
    "mandrill": "anymail.webhooks.mandrill.MandrillCombinedWebhookView",
    "amazon_ses": "anymail.webhooks.amazon_ses.AmazonSESInboundWebhookView",
}


def _client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR, not X-Forwarded-For: behind a proxy set it from the proxy's header in the web server, where
    # it cannot be forged by the client.
    return request.META.get("REMOTE_ADDR", "unknown")


def _rate_limited(workspace: Workspace, request: HttpRequest) -> bool:
    key = f"support:contact:{workspace.pk}:{_client_address(request)}"
    cache.add(key, 0, CONTACT_RATE_WINDOW)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, CONTACT_RATE_WINDOW)
        count = 1
    return count > CONTACT_RATE_LIMIT


def contact(request: HttpRequest, slug: str) -> HttpResponse:
    with scopes_disabled():
        workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise Http404("No such store")
    # Every render carries a fresh signed timestamp, so a person correcting a mistake is timed from the retry.
    context = {"store": workspace, "started": ContactForm.stamp()}
    if request.method != "POST":
        return render(request, "support/public/contact.html", {**context, "form": ContactForm()})
    form = ContactForm(request.POST)
    with scope(workspace=workspace):
        if _rate_limited(workspace, request):
            context["error"] = "Too many messages from your address; please try again in a few minutes."
            return render(request, "support/public/contact.html", {**context, "form": form}, status=429)
        if form.is_valid():
            data = form.cleaned_data
            try:
                customer = customer_for_email(
                    workspace=workspace, email_address=data["email"].lower(), name=data["name"]
                )
                wanted = data["order_number"].strip().lstrip("#")
                order = next(
                    (
                        o
                        for o in selectors.customer_orders_for_linking(workspace=workspace, customer_id=customer.pk)
                        if wanted and o.number.lstrip("#") == wanted
                    ),
                    None,
                )
                ticket = services.ticket_create(
                    workspace=workspace,
                    subject=data["subject"],
                    body_text=data["message"],
                    customer=customer,
                    requester_email=data["email"],
                    requester_name=data["name"],
                    channel=TicketChannel.WEB_FORM,
                    order=order,
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                return render(request, "support/public/contact_done.html", {"ticket": ticket, "store": workspace})
    return render(request, "support/public/contact.html", {**context, "form": form}, status=422)


def survey_answer(request: HttpRequest, token: str, score: int) -> HttpResponse:
    """The one-click link from the email: records the score, then offers a comment box."""
    with scopes_disabled():
        survey = selectors.survey_by_token(token=token)
    with scope(workspace=survey.workspace):
        try:
            surveys.survey_answer(workspace=survey.workspace, survey=survey, score=score)
        except DomainError as error:
            return render(request, "support/public/survey.html", {"survey": survey, "error": error.message}, status=400)
    form = SurveyCommentForm(initial={"score": score})
    return render(request, "support/public/survey.html", {"survey": survey, "form": form, "just_answered": True})


def survey_page(request: HttpRequest, token: str) -> HttpResponse:
    with scopes_disabled():
        survey = selectors.survey_by_token(token=token)
    form = SurveyCommentForm(request.POST or None, initial={"score": survey.score})
    if request.method == "POST" and form.is_valid():
        with scope(workspace=survey.workspace):
            try:
                surveys.survey_answer(
                    workspace=survey.workspace,
                    survey=survey,
                    score=form.cleaned_data["score"],
                    comment=form.cleaned_data["comment"],
                )
            except DomainError as error:
                form.add_error("score", error.message)
            else:
                return render(request, "support/public/survey.html", {"survey": survey, "thanked": True})
    return render(request, "support/public/survey.html", {"survey": survey, "form": form})


@csrf_exempt
def inbound_webhook(request: HttpRequest, token: str, esp: str) -> HttpResponse:
    """anymail parses and authenticates (basic auth / signatures per ESP); we thread each message ourselves instead
    of going through anymail's inbound signal, so the domain logic stays a plain service call."""
    if esp not in INBOUND_VIEWS:
        raise Http404("Unknown email provider")
    with scopes_disabled():
        config = SupportSettings.objects.filter(inbound_token=token).select_related("workspace").first()
    if config is None:
        raise Http404("Unknown inbound address")
    view_class = import_string(INBOUND_VIEWS[esp])
    workspace = config.workspace

    class WorkspaceInboundView(view_class):
        def post(self, request, *args, **kwargs):
            self.run_validators(request)
            with scope(workspace=workspace):
                for event in self.parse_events(request):
                    if event.event_type != "inbound" or event.message is None:
                        continue
                    result = inbound_email_process(workspace=workspace, inbound=parse_message(event.message))
                    logger.info(
                        "inbound email for %s: ticket %s %s",
                        workspace.slug,
                        getattr(result.ticket, "number", None),
                        result.reason,
                    )
            return HttpResponse()

    return WorkspaceInboundView.as_view()(request)
