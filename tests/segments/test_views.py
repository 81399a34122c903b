"""Segments pages: list, builder with htmx preview, save/rename/duplicate/delete, export, RFM page, permissions."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scope, scopes_disabled

from segments import services
from segments.compiler import condition as c
from segments.compiler import group as g
from segments.models import Segment, SegmentMembership
from tests.factories import CustomerFactory
from tests.segments.factories import SegmentFactory
from tests.segments.store import build_store


def url(workspace, rest=""):
    return f"/w/{workspace.slug}/segments/{rest}"


def builder_post(**fields) -> dict:
    """The builder's form fields for a root group with conditions given as dicts."""
    data = {"n-type": "group", "n-match": fields.pop("match", "all"), "name": fields.pop("name", "")}
    for index, cond in enumerate(fields.pop("conditions", []), start=1):
        data[f"n.{index}-type"] = "condition"
        for key, value in cond.items():
            data[f"n.{index}-{key}"] = value
    data.update(fields)
    return data


def test_list_shows_segments_and_offers_starters(workspace, owner_client):
    SegmentFactory(workspace=workspace, name="Big spenders", size=12)

    response = owner_client.get(url(workspace))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-segment="Big spenders"' in html
    assert "Add 8 starter segments" in html


def test_starter_segments_are_created_once(workspace, owner_client):
    build_store(workspace)

    owner_client.post(url(workspace, "starters/"))
    owner_client.post(url(workspace, "starters/"))

    with scopes_disabled():
        segments = {s.starter_key: s for s in Segment.objects.filter(workspace=workspace)}
    assert set(segments) == {
        "first_time_buyers", "repeat_buyers", "vips", "at_risk", "discount_seekers", "cart_abandoners",
        "birthday_this_month", "subscribed_never_purchased",
    }  # fmt: skip
    # sizes worked out on the hand-built store
    assert segments["first_time_buyers"].size == 3  # Dan, Eve, Gus
    assert segments["repeat_buyers"].size == 3  # Ann, Bob, Fay
    assert segments["at_risk"].size == 1  # Bob: 2 orders, last 100 days ago
    assert segments["discount_seekers"].size == 1  # Bob used a code twice
    assert segments["cart_abandoners"].size == 1  # Bob 3 days ago (Dan's was 12 days ago)
    assert segments["birthday_this_month"].size == 1  # Ann
    assert segments["subscribed_never_purchased"].size == 1  # Cat
    assert segments["vips"].size == 1  # top 5% of 6 buyers = the top spender, Ann


def test_builder_preview_counts_and_samples_as_you_edit(workspace, owner_client):
    build_store(workspace)

    response = owner_client.post(
        url(workspace, "builder/"),
        builder_post(conditions=[{"field": "city", "operator": "is", "value": "Paris"}]),
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="builder"')  # the partial, not the page
    assert "<html" not in html
    assert 'id="live-count">2<' in html
    assert 'data-customer="ann@gmail.com"' in html and 'data-customer="eve@gmail.com"' in html


def test_builder_preview_names_what_is_missing(workspace, owner_client):
    response = owner_client.post(
        url(workspace, "builder/"),
        builder_post(conditions=[{"field": "city", "operator": "is"}, {"field": "total_spent", "operator": "gt"}]),
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert "Condition 1: enter a value for &#x27;City&#x27;" in html
    assert "Condition 2: enter a number for &#x27;Total spent&#x27;" in html


def test_changing_the_field_offers_operators_that_fit(workspace, owner_client):
    # the city operator "contains" makes no sense for a number: the builder falls back to the number operators
    response = owner_client.post(
        url(workspace, "builder/"),
        builder_post(conditions=[{"field": "total_spent", "operator": "contains", "value": "x"}]),
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert '<option value="eq" selected>' in html
    assert 'value="contains"' not in html
    assert 'type="number" step="any" name="n.1-value"' in html


@pytest.mark.parametrize(
    ("action", "expected_paths"),
    [
        ("add_condition:", ['data-condition="1"', 'data-condition="2"']),
        ("add_group:", ['data-condition="1"', 'data-group="2"', 'data-condition="2.1"']),
        ("remove:1", []),
    ],
)
def test_builder_actions_add_and_remove_nodes(workspace, owner_client, action, expected_paths):
    response = owner_client.post(
        url(workspace, "builder/"),
        {**builder_post(conditions=[{"field": "city", "operator": "is", "value": "Paris"}]), "action": action},
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    found = [
        p for p in ['data-condition="1"', 'data-condition="2"', 'data-group="2"', 'data-condition="2.1"'] if p in html
    ]
    assert found == expected_paths


def test_saving_a_segment_fills_its_members(workspace, owner_client):
    build_store(workspace)

    response = owner_client.post(
        url(workspace, "new/"),
        builder_post(name="Parisians", conditions=[{"field": "city", "operator": "is", "value": "Paris"}]),
    )

    with scopes_disabled():
        segment = Segment.objects.get(workspace=workspace, name="Parisians")
        members = set(SegmentMembership.objects.filter(segment=segment).values_list("customer__first_name", flat=True))
    assert response.status_code == 302
    assert response["Location"] == url(workspace, f"{segment.pk}/")
    assert segment.rules == g("all", c("city", "is", value="Paris"))
    assert (segment.size, members) == (2, {"Ann", "Eve"})


def test_saving_an_incomplete_rule_keeps_the_form_and_saves_nothing(workspace, owner_client):
    response = owner_client.post(url(workspace, "new/"), builder_post(name="Half", conditions=[{"field": "city"}]))

    assert response.status_code == 400
    assert "enter a value for &#x27;City&#x27;" in response.content.decode()
    with scopes_disabled():
        assert not Segment.objects.filter(workspace=workspace).exists()


def test_duplicate_names_are_refused(workspace, owner_client):
    SegmentFactory(workspace=workspace, name="Parisians")

    response = owner_client.post(
        url(workspace, "new/"),
        builder_post(name="parisians", conditions=[{"field": "city", "operator": "is", "value": "Paris"}]),
    )

    assert response.status_code == 400
    assert "A segment called &#x27;parisians&#x27; already exists." in response.content.decode()


def test_save_as_fixed_list(workspace, owner_client):
    build_store(workspace)

    owner_client.post(
        url(workspace, "new/"),
        builder_post(
            name="Paris today", save_as="static", conditions=[{"field": "city", "operator": "is", "value": "Paris"}]
        ),
    )
    CustomerFactory(workspace=workspace, first_name="Late", city="Paris")

    with scopes_disabled():
        segment = Segment.objects.get(workspace=workspace, name="Paris today")
    with scope(workspace=workspace):
        services.segment_refresh(workspace=workspace, segment=segment)
    assert (segment.is_dynamic, segment.size) == (False, 2)


def test_edit_rename_duplicate_delete(workspace, owner_client):
    build_store(workspace)
    with scope(workspace=workspace):
        segment = services.segment_create(
            workspace=workspace, name="FR", rules=g("all", c("country", "is", value="FR"))
        )

    owner_client.post(
        url(workspace, f"{segment.pk}/edit/"),
        builder_post(name="DE", conditions=[{"field": "country", "operator": "is", "value": "DE"}]),
    )
    owner_client.post(url(workspace, f"{segment.pk}/rename/"), {"name": "Germany"})
    owner_client.post(url(workspace, f"{segment.pk}/duplicate/"))

    with scopes_disabled():
        names = dict(Segment.objects.filter(workspace=workspace).values_list("name", "size"))
    assert names == {"Germany": 2, "Copy of Germany": 2}

    response = owner_client.post(url(workspace, f"{segment.pk}/delete/"))
    assert response.status_code == 302
    with scopes_disabled():
        assert list(Segment.objects.filter(workspace=workspace).values_list("name", flat=True)) == ["Copy of Germany"]


def test_a_segment_used_by_another_cannot_be_deleted(workspace, owner_client):
    base = SegmentFactory(workspace=workspace, name="Base")
    SegmentFactory(workspace=workspace, name="User", rules=g("all", c("segment", "in", value=base.pk)))

    owner_client.post(url(workspace, f"{base.pk}/delete/"))

    with scopes_disabled():
        assert Segment.objects.filter(pk=base.pk).exists()


def test_detail_lists_members_and_paginates_with_htmx(workspace, owner_client):
    build_store(workspace)
    with scope(workspace=workspace):
        segment = services.segment_create(
            workspace=workspace, name="Buyers", rules=g("all", c("orders_count", "gte", value=1))
        )

    page = owner_client.get(url(workspace, f"{segment.pk}/"))
    partial = owner_client.get(url(workspace, f"{segment.pk}/"), HTTP_HX_REQUEST="true")

    html = page.content.decode()
    assert 'data-testid="segment-size">6<' in html
    assert "Number of orders ≥ 1" in html
    assert partial.content.decode().lstrip().startswith('<div id="members">')


def test_export_is_safe_against_formula_injection(workspace, owner_client):
    CustomerFactory(workspace=workspace, first_name="=HYPERLINK(\"http://evil\")", last_name="+1", city="@home",
                    email="x@example.org", orders_count=1)  # fmt: skip
    CustomerFactory(workspace=workspace, first_name="-2", last_name="\tTab", email="y@example.org", orders_count=1)
    segment = SegmentFactory(workspace=workspace, rules=g("all", c("orders_count", "gte", value=1)))

    response = owner_client.get(url(workspace, f"{segment.pk}/export.csv"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["first_name"], r["last_name"], r["city"]) for r in rows] == [
        ('\'=HYPERLINK("http://evil")', "'+1", "'@home"),
        ("'-2", "'\tTab", ""),
    ]


def test_static_segment_from_a_csv_of_emails(workspace, owner_client):
    build_store(workspace)
    upload = SimpleUploadedFile(
        "list.csv", b"name,Email\nAnn,ANN@gmail.com\nNobody,nobody@example.org\nBroken,\nBob,bob@yahoo.com\n"
    )

    response = owner_client.post(url(workspace, "import/"), {"name": "From CSV", "file": upload}, follow=True)

    with scopes_disabled():
        segment = Segment.objects.get(workspace=workspace, name="From CSV")
        members = set(SegmentMembership.objects.filter(segment=segment).values_list("customer__first_name", flat=True))
    assert (segment.is_dynamic, members) == (False, {"Ann", "Bob"})
    html = response.content.decode()
    assert "holds 2 customers" in html
    assert "Not found: nobody@example.org" in html
    assert "Lines without an email: 4" in html


def test_csv_without_emails_says_so(workspace, owner_client):
    upload = SimpleUploadedFile("list.csv", b"name\nAnn\n")

    response = owner_client.post(url(workspace, "import/"), {"name": "Nothing", "file": upload})

    assert response.status_code == 400
    assert "No email addresses found in the file" in response.content.decode()


def test_rfm_page_shows_grid_groups_and_links(workspace, owner_client):
    build_store(workspace)
    owner_client.post(url(workspace, "rfm/rescore/"))

    response = owner_client.get(url(workspace, "rfm/"))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="rfm-grid"' in html
    assert f'href="/w/{workspace.slug}/customers/?rfm_group=At%20risk"' in html
    assert 'data-group="Prospects"' in html


def test_rfm_settings_override_a_cell_and_rescore(workspace, owner_client):
    response = owner_client.post(url(workspace, "rfm/settings/"), {"window_days": "365", "map-4-5": "Champions"})

    assert response.status_code == 302
    with scope(workspace=workspace):
        from segments.selectors import rfm_settings_get

        settings = rfm_settings_get(workspace=workspace)
    assert (settings.window_days, settings.group_map) == (365, {"4,5": "Champions"})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "new/"),
        ("post", "starters/"),
        ("post", "rfm/rescore/"),
        ("post", "{id}/delete/"),
        ("post", "{id}/rename/"),
    ],
)
def test_viewers_cannot_change_segments(workspace, make_member_client, method, path):
    viewer = make_member_client(workspace, "viewer")
    segment = SegmentFactory(workspace=workspace, name="Keep")

    response = getattr(viewer, method)(url(workspace, path.format(id=segment.pk)), {"name": "Changed"})

    assert response.status_code == 403
    with scopes_disabled():
        assert list(Segment.objects.filter(workspace=workspace).values_list("name", flat=True)) == ["Keep"]


def test_support_cannot_export(workspace, make_member_client):
    segment = SegmentFactory(workspace=workspace)

    assert make_member_client(workspace, "support").get(url(workspace, f"{segment.pk}/export.csv")).status_code == 403


def test_cannot_access_other_workspace_segment(workspace, other_workspace, owner_client):
    foreign = SegmentFactory(workspace=other_workspace, name="Theirs")

    assert owner_client.get(url(workspace, f"{foreign.pk}/")).status_code == 404
    assert owner_client.get(url(workspace, f"{foreign.pk}/export.csv")).status_code == 404
    assert owner_client.post(url(workspace, f"{foreign.pk}/delete/")).status_code == 404
    assert (
        owner_client.post(url(workspace, "builder/"), {"segment_id": foreign.pk, "n-type": "group"}).status_code == 404
    )
    with scopes_disabled():
        assert Segment.objects.filter(pk=foreign.pk, name="Theirs").exists()
