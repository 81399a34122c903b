"""CSAT after solve, NPS after an order: scheduling with a delay, sending once, one-click answers, comments."""

import datetime as dt

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_scopes import scope

from customers.models import Customer, Event
from support import services, surveys
from support.models import Survey, SurveyStatus
from support.selectors import nps_score
from tests.factories import CustomerFactory, OrderFactory
from tests.support.factories import SurveyFactory


@pytest.fixture
def solved_ticket(in_scope, customer, rep):
    ticket = services.ticket_create(workspace=in_scope, subject="Late parcel", body_text="Late", customer=customer)
    services.ticket_status_set(workspace=in_scope, ticket=ticket, status="solved")
    return ticket


def test_csat_is_scheduled_after_the_configured_delay(in_scope, solved_ticket):
    survey = solved_ticket.surveys.get()

    assert survey.kind == "csat" and survey.status == SurveyStatus.SCHEDULED
    delay = survey.send_after - solved_ticket.solved_at
    assert dt.timedelta(minutes=59) < delay <= dt.timedelta(minutes=60, seconds=1)
    assert surveys.surveys_due(workspace=in_scope) == []
    assert surveys.surveys_due(workspace=in_scope, now=survey.send_after) == [survey.pk]


def test_csat_can_be_switched_off(in_scope, customer):
    config = services.support_settings_for(workspace=in_scope)
    config.is_csat_enabled = False
    config.save()
    ticket = services.ticket_create(workspace=in_scope, subject="x", body_text="y", customer=customer)

    services.ticket_status_set(workspace=in_scope, ticket=ticket, status="solved")

    assert Survey.objects.count() == 0


def test_due_survey_is_sent_once_with_one_click_links(in_scope, solved_ticket, email_backend, settings):
    settings.SITE_URL = "https://crm.example.com"
    survey = solved_ticket.surveys.get()
    later = survey.send_after + dt.timedelta(seconds=1)

    assert surveys.survey_send(workspace=in_scope, survey_id=survey.pk, now=later) is True
    assert surveys.survey_send(workspace=in_scope, survey_id=survey.pk, now=later) is False  # a duplicated task

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["jane@shopper.test"]
    assert sent.subject == f"How did we do? [#{solved_ticket.number}] Late parcel"
    assert sent.extra_headers["Auto-Submitted"] == "auto-generated"
    for score in range(1, 6):
        assert f"https://crm.example.com/support/survey/{survey.token}/{score}/" in sent.body
    html = sent.alternatives[0][0]
    assert f"/support/survey/{survey.token}/5/" in html
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.SENT


def test_survey_not_yet_due_is_not_sent(in_scope, solved_ticket, email_backend):
    survey = solved_ticket.surveys.get()

    assert surveys.survey_send(workspace=in_scope, survey_id=survey.pk) is False
    assert mail.outbox == []


def test_one_click_answer_updates_the_customer_and_timeline(workspace, customer, solved_ticket):
    with scope(workspace=workspace):
        survey = solved_ticket.surveys.get()

    response = Client().get(f"/support/survey/{survey.token}/2/")

    assert response.status_code == 200
    assert "We recorded your answer: <strong>2</strong>" in response.content.decode()
    with scope(workspace=workspace):
        survey.refresh_from_db()
        assert (survey.status, survey.score) == (SurveyStatus.ANSWERED, 2)
        fresh = Customer.objects.get(pk=customer.pk)
        assert fresh.last_csat_score == 2 and fresh.last_csat_at is not None
        event = Event.objects.get(customer=customer, type="survey_answered")
        assert event.properties == {"survey": "csat", "score": 2, "survey_id": survey.pk, "ticket_id": solved_ticket.pk}


def test_comment_and_changed_score_are_saved_without_a_second_event(workspace, customer, solved_ticket):
    with scope(workspace=workspace):
        survey = solved_ticket.surveys.get()
    client = Client()
    client.get(f"/support/survey/{survey.token}/2/")

    response = client.post(f"/support/survey/{survey.token}/", {"score": 4, "comment": "Slow, but kind."})

    assert "Thank you for your feedback" in response.content.decode()
    with scope(workspace=workspace):
        survey.refresh_from_db()
        assert (survey.score, survey.comment) == (4, "Slow, but kind.")
        assert Customer.objects.get(pk=customer.pk).last_csat_score == 4
        assert Event.objects.filter(type="survey_answered").count() == 1


def test_out_of_range_score_is_refused(workspace, solved_ticket):
    with scope(workspace=workspace):
        survey = solved_ticket.surveys.get()

    response = Client().get(f"/support/survey/{survey.token}/9/")

    assert response.status_code == 400
    assert "between 1 and 5" in response.content.decode()
    with scope(workspace=workspace):
        survey.refresh_from_db()
        assert survey.score is None


def test_unknown_token_is_404(db):
    assert Client().get("/support/survey/nope/3/").status_code == 404


def test_nps_is_scheduled_for_new_orders_once_per_quiet_period(in_scope):
    now = timezone.now()
    ann, bob = CustomerFactory(workspace=in_scope), CustomerFactory(workspace=in_scope)
    first = OrderFactory(workspace=in_scope, customer=ann, placed_at=now - dt.timedelta(hours=1))
    OrderFactory(workspace=in_scope, customer=ann, placed_at=now)  # same customer: asked once
    OrderFactory(workspace=in_scope, customer=bob, placed_at=now - dt.timedelta(days=400))  # history import
    OrderFactory(workspace=in_scope, customer=bob, status="cancelled", placed_at=now)

    created = surveys.surveys_schedule_nps_for_new_orders(workspace=in_scope, now=now)

    assert created == 1
    survey = Survey.objects.get()
    assert (survey.kind, survey.customer, survey.order) == ("nps", ann, first)
    assert survey.send_after == first.placed_at + dt.timedelta(days=14)
    # the cursor moved: running again schedules nothing
    assert surveys.surveys_schedule_nps_for_new_orders(workspace=in_scope, now=now) == 0
    OrderFactory(workspace=in_scope, customer=ann, placed_at=now)
    assert surveys.surveys_schedule_nps_for_new_orders(workspace=in_scope, now=now) == 0  # quiet period
    OrderFactory(workspace=in_scope, customer=bob, placed_at=now)
    assert surveys.surveys_schedule_nps_for_new_orders(workspace=in_scope, now=now) == 1


def test_nps_answer_sets_the_customer_nps(workspace):
    survey = SurveyFactory(workspace=workspace, kind="nps", ticket=None, order=OrderFactory(workspace=workspace))

    Client().get(f"/support/survey/{survey.token}/3/")

    with scope(workspace=workspace):
        assert Customer.objects.get(pk=survey.customer_id).last_nps_score == 3


@pytest.mark.parametrize(("scores", "expected"), [([], None), ([10, 9, 8, 0], 25.0), ([6, 6, 10], -33.3)])
def test_nps_score(scores, expected):
    assert nps_score(scores) == expected


def test_minute_tick_sends_due_surveys(in_scope, solved_ticket, email_backend):
    from support.tasks import support_minute_tick

    Survey.objects.update(send_after=timezone.now() - dt.timedelta(minutes=1))

    assert support_minute_tick(in_scope.pk) == 1

    assert len(mail.outbox) == 1
    assert Survey.objects.get().status == SurveyStatus.SENT
