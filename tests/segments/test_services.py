"""Membership refresh (events, size history, due logic), starter segments, demo seed, and the Celery tasks."""

import datetime as dt
import time

from django.utils import timezone
from django_scopes import scope, scopes_disabled

from customers.models import Customer, Event
from segments import demo, services, tasks
from segments.compiler import condition as c
from segments.compiler import group as g
from segments.models import Segment, SegmentMembership, SegmentSize
from tests.factories import CustomerFactory, EventFactory, OrderFactory
from tests.segments.store import build_store


def member_names(segment) -> set[str]:
    with scopes_disabled():
        return set(SegmentMembership.objects.filter(segment=segment).values_list("customer__first_name", flat=True))


def events_of(workspace, kind) -> set[tuple[str, str]]:
    with scopes_disabled():
        return {
            (e.customer.first_name, e.properties["segment"])
            for e in Event.objects.filter(workspace=workspace, type=kind).select_related("customer")
        }


def test_refresh_records_who_entered_and_who_left(workspace):
    ann = CustomerFactory(workspace=workspace, first_name="Ann", city="Paris")
    bob = CustomerFactory(workspace=workspace, first_name="Bob", city="Lyon")
    with scope(workspace=workspace):
        segment = services.segment_create(
            workspace=workspace, name="Paris", rules=g("all", c("city", "is", value="Paris"))
        )
    assert member_names(segment) == {"Ann"}
    assert events_of(workspace, "segment_entered") == {("Ann", "Paris")}

    # when Ann moves away and Bob moves in
    with scopes_disabled():
        Customer.objects.filter(pk=ann.pk).update(city="Lyon")
        Customer.objects.filter(pk=bob.pk).update(city="Paris")
    with scope(workspace=workspace):
        result = services.segment_refresh(workspace=workspace, segment=segment)

    assert (result.size, result.entered, result.left) == (1, 1, 1)
    assert member_names(segment) == {"Bob"}
    assert events_of(workspace, "segment_entered") == {("Ann", "Paris"), ("Bob", "Paris")}
    assert events_of(workspace, "segment_left") == {("Ann", "Paris")}
    with scopes_disabled():
        sizes = list(
            SegmentSize.objects.filter(segment=segment).order_by("recorded_at").values_list("size", "entered", "left")
        )
        segment.refresh_from_db()
    assert sizes == [(1, 1, 0), (1, 1, 1)]
    assert segment.last_evaluated_at is not None


def test_a_refresh_with_no_change_records_no_events(workspace):
    CustomerFactory(workspace=workspace, first_name="Ann", city="Paris")
    with scope(workspace=workspace):
        segment = services.segment_create(
            workspace=workspace, name="Paris", rules=g("all", c("city", "is", value="Paris"))
        )
        result = services.segment_refresh(workspace=workspace, segment=segment)

    assert (result.entered, result.left) == (0, 0)
    with scopes_disabled():
        assert Event.objects.filter(workspace=workspace, type__startswith="segment_").count() == 1


def test_refresh_is_due_only_after_new_activity_and_the_interval(workspace):
    CustomerFactory(workspace=workspace, first_name="Ann", city="Paris")
    with scope(workspace=workspace):
        segment = services.segment_create(
            workspace=workspace, name="Paris", rules=g("all", c("city", "is", value="Paris"))
        )
        later = timezone.now() + services.REFRESH_INTERVAL + dt.timedelta(minutes=1)
        assert services.segments_refresh_due(workspace=workspace, now=later) == []  # nothing happened since

        EventFactory(customer=CustomerFactory(workspace=workspace), type="page_viewed")
        assert services.segments_refresh_due(workspace=workspace) == []  # too soon
        assert services.segments_refresh_due(workspace=workspace, now=later) == [segment.pk]


def test_static_segments_keep_their_list_but_drop_erased_customers(workspace):
    ann = CustomerFactory(workspace=workspace, first_name="Ann")
    bob = CustomerFactory(workspace=workspace, first_name="Bob")
    with scope(workspace=workspace):
        segment = services.segment_create_static(workspace=workspace, name="Picked", customer_ids=[ann.pk, bob.pk])
    with scopes_disabled():
        Customer.objects.filter(pk=bob.pk).update(erased_at=timezone.now())
    with scope(workspace=workspace):
        services.segment_refresh(workspace=workspace, segment=segment)

    assert member_names(segment) == {"Ann"}


def test_static_segment_ignores_other_workspaces_customers(workspace, other_workspace):
    stranger = CustomerFactory(workspace=other_workspace)

    with scope(workspace=workspace):
        segment = services.segment_create_static(workspace=workspace, name="Sneaky", customer_ids=[stranger.pk])

    assert segment.size == 0


def test_demo_seed_scores_and_creates_the_starters(workspace):
    build_store(workspace)

    with scope(workspace=workspace):
        demo.seed(workspace=workspace)
        demo.seed(workspace=workspace)  # idempotent

    with scopes_disabled():
        assert Segment.objects.filter(workspace=workspace).exclude(starter_key="").count() == 8
        assert not Customer.objects.filter(workspace=workspace, rfm_group="").exists()


def test_segment_customers_is_what_campaigns_get(workspace):
    from segments.selectors import segment_customers, segment_list

    build_store(workspace)
    with scope(workspace=workspace):
        segment = services.segment_create(
            workspace=workspace, name="FR", rules=g("all", c("country", "is", value="FR"))
        )
        assert list(segment_list(workspace=workspace)) == [segment]
        names = set(segment_customers(workspace=workspace, segment=segment).values_list("first_name", flat=True))
    assert names == {"Ann", "Bob", "Eve"}


def test_tasks_run_eagerly_in_the_workspace_scope(workspace):
    CustomerFactory(workspace=workspace, first_name="Ann", city="Paris")
    OrderFactory(workspace=workspace, customer__workspace=workspace, customer__first_name="Buyer")
    with scope(workspace=workspace):
        segment = services.segment_create(
            workspace=workspace, name="Paris", rules=g("all", c("city", "is", value="Paris"))
        )

    tasks.segments_nightly.delay(workspace.pk)
    tasks.segment_refresh.delay(workspace.pk, 999_999)  # gone: nothing happens
    tasks.rfm_rescore.delay(999_999)  # workspace gone: nothing happens

    with scopes_disabled():
        assert Customer.objects.get(first_name="Buyer").rfm_group != ""
        assert SegmentSize.objects.filter(segment=segment).count() == 2


def test_rescore_runs_on_a_real_celery_worker(celery_worker, workspace):
    # given a customer with an order, and a real worker on Redis reading the same database
    OrderFactory(workspace=workspace, customer__workspace=workspace, customer__first_name="Buyer")

    # when the nightly task is queued
    tasks.rfm_rescore.delay(workspace.pk)

    # then the worker scores the customer
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with scopes_disabled():
            group = Customer.objects.get(first_name="Buyer").rfm_group
        if group:
            break
        time.sleep(0.2)
    assert group == "Champions", celery_worker.output()[-2000:]
