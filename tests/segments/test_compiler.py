"""The compiler, condition by condition, against answers worked out by hand on tests/segments/store.py.

Runs on SQLite locally and on PostgreSQL in CI (DATABASE_URL), so both SQL dialects are checked.
"""

import datetime as dt

import pytest
from django_scopes import scope

from segments import compiler
from segments.compiler import condition as c
from segments.compiler import group as g
from tests.factories import CustomerFactory, EventFactory
from tests.segments.factories import SegmentFactory
from tests.segments.store import build_store


@pytest.fixture
def store(workspace):
    return build_store(workspace)


def names(workspace, rules) -> set[str]:
    with scope(workspace=workspace):
        return set(compiler.rules_queryset(rules, workspace=workspace).values_list("first_name", flat=True))


ALL = {"Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus"}


def today_minus(workspace, days: int) -> str:
    return (workspace.today() - dt.timedelta(days=days)).isoformat()


CASES = [
    # Profile
    ("city is (any case)", c("city", "is", value="paris"), {"Ann", "Eve"}),
    ("city is not", c("city", "is_not", value="Paris"), ALL - {"Ann", "Eve"}),
    ("city contains", c("city", "contains", value="o"), {"Bob", "Dan"}),
    ("city not contains", c("city", "not_contains", value="o"), ALL - {"Bob", "Dan"}),
    ("city starts with", c("city", "starts_with", value="PA"), {"Ann", "Eve"}),
    ("city is empty", c("city", "is_empty"), {"Cat", "Fay", "Gus"}),
    ("city is not empty", c("city", "is_not_empty"), {"Ann", "Bob", "Dan", "Eve"}),
    ("email domain is", c("email_domain", "is", value="gmail.com"), {"Ann", "Cat", "Eve", "Fay", "Gus"}),
    ("email domain is (with @)", c("email_domain", "is", value="@YAHOO.com"), {"Bob"}),
    ("email domain is not", c("email_domain", "is_not", value="gmail.com"), {"Bob", "Dan"}),
    ("country is", c("country", "is", value="fr"), {"Ann", "Bob", "Eve"}),
    ("gender is", c("gender", "is", value="female"), {"Ann"}),
    ("gender is empty", c("gender", "is_empty"), {"Cat", "Dan", "Eve", "Fay", "Gus"}),
    ("age at least 30", c("age", "gte", value=30), {"Ann", "Bob"}),
    ("age over 30", c("age", "gt", value=30), {"Bob"}),
    ("age exactly 19", c("age", "eq", value=19), {"Dan"}),
    ("age not 30", c("age", "ne", value=30), {"Bob", "Dan"}),
    ("age under 30", c("age", "lt", value=30), {"Dan"}),
    ("age at most 30", c("age", "lte", value=30), {"Ann", "Dan"}),
    ("age between", c("age", "between", value=45, value2=20), {"Ann", "Bob"}),
    ("age unknown", c("age", "is_empty"), {"Cat", "Eve", "Fay", "Gus"}),
    ("language is", c("language", "is", value="fr"), {"Ann"}),
    ("has tag", c("tag", "has", value="VIP"), {"Ann"}),
    ("has not tag", c("tag", "has_not", value="vip"), ALL - {"Ann"}),
    ("email consent", c("email_consent", "is", value="subscribed"), {"Ann", "Cat"}),
    ("email consent is not", c("email_consent", "is_not", value="subscribed"), ALL - {"Ann", "Cat"}),
    ("custom attribute is", c("custom_attribute", "is", key="plan", value="gold"), {"Ann"}),
    ("custom attribute is not", c("custom_attribute", "is_not", key="plan", value="gold"), ALL - {"Ann"}),
    ("custom attribute contains", c("custom_attribute", "contains", key="plan", value="IL"), {"Bob"}),
    ("custom attribute empty", c("custom_attribute", "is_empty", key="plan"), ALL - {"Ann", "Bob"}),
    ("created in the last day", c("created_at", "in_last_days", days=1), ALL),
    ("created more than 1 day ago", c("created_at", "not_in_last_days", days=2), set()),
    ("birthday this month", c("birthday_month", "this_month"), {"Ann"}),
    ("loyalty points", c("loyalty_points", "eq", value=0), ALL),
    # Purchases (denormalised columns)
    ("orders at least 2", c("orders_count", "gte", value=2), {"Ann", "Bob", "Fay"}),
    ("no orders", c("orders_count", "eq", value=0), {"Cat"}),
    ("orders not 1", c("orders_count", "ne", value=1), {"Ann", "Bob", "Cat", "Fay"}),
    ("spent over 100", c("total_spent", "gt", value="100"), {"Ann", "Eve", "Fay"}),
    ("spent between (inclusive)", c("total_spent", "between", value="60", value2="120"), {"Bob", "Eve", "Gus"}),
    ("AOV under 50", c("average_order_value", "lt", value="50"), {"Bob", "Cat", "Dan"}),
    ("last order in 25 days", c("last_order_at", "in_last_days", days=25), {"Ann", "Eve", "Gus"}),
    ("last order over 60 days ago", c("last_order_at", "not_in_last_days", days=60), {"Bob"}),
    ("never ordered", c("last_order_at", "is_empty"), {"Cat"}),
    ("ordered at some point", c("last_order_at", "is_not_empty"), ALL - {"Cat"}),
    # Purchases (EXISTS over orders and lines); Dan's shoe order was cancelled
    ("bought in category", c("bought_category", "did", value="shoes"), {"Ann", "Bob", "Eve", "Fay", "Gus"}),
    ("bought in category, 90 days", c("bought_category", "did", value="Shoes", days=90), {"Ann", "Eve", "Fay", "Gus"}),
    ("bought in category twice", c("bought_category", "did", value="Shoes", times=2), {"Ann"}),
    ("never bought in category", c("bought_category", "did_not", value="Shoes"), {"Cat", "Dan"}),
    ("used a discount", c("used_discount", "did"), {"Ann", "Bob"}),
    ("used a discount twice", c("used_discount", "did", times=2), {"Bob"}),
    ("used a discount in 30 days", c("used_discount", "did", days=30), {"Ann"}),
    # Storefront events
    ("viewed 3 times in 7 days", c("event", "did", value="product_viewed", days=7, times=3), {"Ann"}),
    ("viewed 4 times in 7 days", c("event", "did", value="product_viewed", days=7, times=4), set()),
    ("viewed a product ever", c("event", "did", value="product_viewed"), {"Ann", "Cat"}),
    ("abandoned a cart in 7 days", c("event", "did", value="cart_abandoned", days=7), {"Bob"}),
    ("never abandoned a cart", c("event", "did_not", value="cart_abandoned"), {"Ann", "Cat", "Eve", "Fay", "Gus"}),
    # Engagement
    ("opened an email in 60 days", c("email_opened", "did", days=60), {"Ann", "Dan", "Fay", "Gus"}),
    ("no email opened in 60 days", c("email_opened", "did_not", days=60), {"Bob", "Cat", "Eve"}),
    ("received an email", c("email_received", "did"), {"Cat"}),
    ("clicked in 7 days", c("email_clicked", "did", days=7), {"Dan"}),
    ("unsubscribed", c("email_unsubscribed", "did"), {"Bob"}),
    ("bounced", c("email_bounced", "did"), {"Cat"}),
    # RFM
    ("RFM group", c("rfm_group", "is", value="At risk"), {"Bob", "Fay"}),
    ("RFM group is not", c("rfm_group", "is_not", value="At risk"), ALL - {"Bob", "Fay"}),
    ("recency score", c("rfm_recency", "gte", value=4), {"Ann", "Dan", "Eve", "Gus"}),
    ("monetary score", c("rfm_monetary", "eq", value=4), {"Eve", "Fay"}),
    # Support
    ("open tickets", c("open_tickets_count", "gt", value=0), {"Ann"}),
    ("low CSAT", c("last_csat_score", "lte", value=3), {"Bob"}),
    ("no CSAT", c("last_csat_score", "is_empty"), {"Cat", "Dan", "Eve", "Fay", "Gus"}),
    ("promoter", c("last_nps_score", "gte", value=9), {"Ann"}),
    # Predictions
    ("CLV tier", c("clv_tier", "is", value="high"), {"Ann"}),
    ("churn risk", c("churn_risk", "is", value="high"), {"Bob"}),
    ("probability alive", c("probability_alive", "lt", value="0.5"), {"Bob"}),
    ("no prediction", c("probability_alive", "is_empty"), {"Cat", "Dan", "Eve", "Fay", "Gus"}),
    ("predicted CLV", c("predicted_clv", "gt", value="100"), {"Ann"}),
    # Groups
    (
        "the marketer's rule",
        g(
            "all",
            c("bought_category", "did", value="Shoes", days=90),
            g("any", c("rfm_group", "is", value="At risk"), c("email_opened", "did_not", days=60)),
        ),
        {"Eve", "Fay"},
    ),
    ("any of two", g("any", c("country", "is", value="DE"), c("age", "gte", value=40)), {"Bob", "Fay", "Gus"}),
    ("all of two", g("all", c("country", "is", value="FR"), c("orders_count", "eq", value=1)), {"Eve"}),
]


@pytest.mark.parametrize(("rule", "expected"), [pytest.param(r, e, id=i) for i, r, e in CASES])
def test_condition_matches_hand_computed_customers(workspace, store, rule, expected):
    rules = rule if rule.get("type") == "group" else g("all", rule)

    assert names(workspace, rules) == expected


def test_absolute_dates_are_whole_days_in_the_workspace_calendar(workspace, store):
    assert names(workspace, g("all", c("first_order_at", "before", value=today_minus(workspace, 250)))) == {
        "Ann",
        "Bob",
    }
    assert names(workspace, g("all", c("first_order_at", "after", value=today_minus(workspace, 35)))) == {
        "Dan",
        "Eve",
        "Gus",
    }
    between = c("first_order_at", "between", value=today_minus(workspace, 15), value2=today_minus(workspace, 35))
    assert names(workspace, g("all", between)) == {"Dan", "Eve"}


def test_birthday_month_is(workspace, store):
    bob_month = str(store["customers"]["bob"].birth_date.month)

    assert names(workspace, g("all", c("birthday_month", "is", value=bob_month))) == {"Bob"}


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
def test_in_the_last_days_starts_at_the_workspaces_midnight(workspace, tz):
    # given a workspace far from UTC and two events either side of its own midnight six days ago
    workspace.timezone = tz
    workspace.save()
    cutoff = compiler.last_days_cutoff(workspace, 7)
    inside = CustomerFactory(workspace=workspace, first_name="Inside")
    outside = CustomerFactory(workspace=workspace, first_name="Outside")
    EventFactory(customer=inside, type="email_opened", occurred_at=cutoff + dt.timedelta(minutes=1))
    EventFactory(customer=outside, type="email_opened", occurred_at=cutoff - dt.timedelta(minutes=1))

    # then "in the last 7 days" is 7 calendar days including today, in the workspace's timezone
    assert cutoff.astimezone(workspace.tzinfo).time() == dt.time(0, 0)
    assert cutoff.astimezone(workspace.tzinfo).date() == workspace.today() - dt.timedelta(days=6)
    assert names(workspace, g("all", c("email_opened", "did", days=7))) == {"Inside"}


def test_membership_of_another_segment(workspace, store):
    at_risk = SegmentFactory(workspace=workspace, name="At risk", rules=g("all", c("rfm_group", "is", value="At risk")))

    assert names(workspace, g("all", c("segment", "in", value=at_risk.pk))) == {"Bob", "Fay"}
    assert names(workspace, g("all", c("segment", "not_in", value=at_risk.pk), c("country", "is", value="FR"))) == {
        "Ann",
        "Eve",
    }


def test_membership_of_a_static_segment_uses_its_list(workspace, store):
    from segments import services

    with scope(workspace=workspace):
        fixed = services.segment_create_static(
            workspace=workspace, name="Picked", customer_ids=[store["customers"]["cat"].pk]
        )

    assert names(workspace, g("all", c("segment", "in", value=fixed.pk))) == {"Cat"}


def test_a_segment_cannot_refer_to_itself(workspace):
    segment = SegmentFactory(workspace=workspace, name="Loop")
    segment.rules = g("all", c("segment", "in", value=segment.pk))
    segment.save()

    with scope(workspace=workspace), pytest.raises(compiler.RuleError) as error:
        compiler.compile_rules(segment.rules, workspace=workspace, segment_id=segment.pk)
    assert error.value.problems == {"1": "'Loop' refers back to itself"}


def test_another_workspaces_segment_is_not_found(workspace, other_workspace):
    foreign = SegmentFactory(workspace=other_workspace)

    with scope(workspace=workspace), pytest.raises(compiler.RuleError) as error:
        compiler.compile_rules(g("all", c("segment", "in", value=foreign.pk)), workspace=workspace)
    assert error.value.problems == {"1": "the segment it refers to no longer exists"}


def test_rules_never_reach_another_workspace(workspace, other_workspace, store):
    CustomerFactory(workspace=other_workspace, first_name="Zed", city="Paris")

    assert names(workspace, g("all", c("city", "is", value="Paris"))) == {"Ann", "Eve"}


def test_merged_and_erased_customers_are_never_in_a_segment(workspace, store):
    from django.utils import timezone

    CustomerFactory(workspace=workspace, first_name="Gone", city="Paris", erased_at=timezone.now())
    CustomerFactory(workspace=workspace, first_name="Dup", city="Paris", merged_into=store["customers"]["ann"])

    assert names(workspace, g("all", c("city", "is", value="Paris"))) == {"Ann", "Eve"}


def test_the_whole_tree_is_one_sql_statement(workspace, store, django_assert_num_queries):
    rules = g(
        "all",
        c("bought_category", "did", value="Shoes", days=90, times=1),
        g("any", c("rfm_group", "is", value="At risk"), c("email_opened", "did_not", days=60)),
        c("event", "did", value="product_viewed", times=2),
        c("tag", "has_not", value="vip"),
    )
    with scope(workspace=workspace):
        queryset = compiler.rules_queryset(rules, workspace=workspace)
        with django_assert_num_queries(1):
            assert queryset.count() == 0
        sql = str(queryset.query).upper()
    assert sql.count("EXISTS") == 4


VALIDATION_CASES = [
    ("no conditions", g("all"), {"": "add at least one condition"}),
    ("no field", g("all", c("", "")), {"1": "choose a field"}),
    ("unknown field", g("all", c("shoe_size", "is", value="9")), {"1": "choose a field"}),
    ("no operator", g("all", c("city", "")), {"1": "choose what 'City' should be compared with"}),
    (
        "operator not for field",
        g("all", c("city", "gt", value="3")),
        {"1": "choose what 'City' should be compared with"},
    ),
    ("no value", g("all", c("city", "is", value="  ")), {"1": "enter a value for 'City'"}),
    ("not a number", g("all", c("total_spent", "gt", value="lots")), {"1": "enter a number for 'Total spent'"}),
    (
        "between without upper bound",
        g("all", c("total_spent", "between", value="1")),
        {"1": "enter the upper bound of 'Total spent'"},
    ),
    (
        "days missing",
        g("all", c("last_order_at", "in_last_days")),
        {"1": "enter a number of days (1 to 36500) for 'Last order date'"},
    ),
    (
        "bad date",
        g("all", c("created_at", "before", value="31/12/2025")),
        {"1": "enter a date (YYYY-MM-DD, 1900-2200) for 'Became a customer'"},
    ),
    ("bad choice", g("all", c("rfm_group", "is", value="Heroes")), {"1": "'Heroes' is not a valid rfm group"}),
    ("no category", g("all", c("bought_category", "did")), {"1": "choose a category"}),
    ("absurd age", g("all", c("age", "gte", value="100000")), {"1": "an age is between 0 and 150"}),
    ("negative age", g("all", c("age", "between", value="-1", value2="20")), {"1": "an age is between 0 and 150"}),
    (
        "date out of range",
        g("all", c("created_at", "after", value="9999-12-31")),
        {"1": "enter a date (YYYY-MM-DD, 1900-2200) for 'Became a customer'"},
    ),
    (
        "too many days",
        g("all", c("last_order_at", "in_last_days", days="99999999")),
        {"1": "enter a number of days (1 to 36500) for 'Last order date'"},
    ),
    (
        "too many activity days",
        g("all", c("email_opened", "did", days="99999999")),
        {"1": "the number of days must be a whole number from 1 to 36500"},
    ),
    (
        "huge number",
        g("all", c("total_spent", "gt", value="1e20")),
        {"1": "'Total spent' must be under 1,000,000,000,000"},
    ),
    (
        "huge product id",
        g("all", c("bought_product", "did", value="99999999999999999999999")),
        {"1": "choose a product"},
    ),
    (
        "bad times",
        g("all", c("email_opened", "did", times="x")),
        {"1": "'at least … times' must be a whole number, 1 or more"},
    ),
    ("no segment", g("all", c("segment", "in")), {"1": "choose a segment"}),
    (
        "custom attribute without a name",
        g("all", c("custom_attribute", "is", value="x")),
        {"1": "name the custom attribute (letters, digits, _ or -)"},
    ),
    (
        "nested problems are located",
        g("all", c("city", "is", value="Paris"), g("any", c("country", "is", value="FR"), c("age", "gte"))),
        {"2.2": "enter a number for 'Age'"},
    ),
    (
        "empty nested group",
        g("all", c("city", "is", value="Paris"), g("any")),
        {"2": "this group is empty: add a condition or remove the group"},
    ),
]


@pytest.mark.parametrize(("rules", "problems"), [pytest.param(r, p, id=i) for i, r, p in VALIDATION_CASES])
def test_incomplete_rules_say_which_condition_and_what_is_missing(workspace, rules, problems):
    with scope(workspace=workspace), pytest.raises(compiler.RuleError) as error:
        compiler.validate(rules, workspace=workspace)

    assert error.value.problems == problems


def test_rule_error_message_reads_well(workspace):
    with scope(workspace=workspace), pytest.raises(compiler.RuleError) as error:
        compiler.validate(g("all", c("city", "is"), c("age", "gte", value="old")), workspace=workspace)

    assert error.value.message == "Condition 1: enter a value for 'City'; Condition 2: enter a number for 'Age'"


def test_exact_count_counts_the_rule_and_leaves_the_sessions_planner_settings_alone(workspace, store):
    from django.db import connection, transaction

    rules = g("all", c("city", "is", value="Paris"))
    with scope(workspace=workspace), transaction.atomic():
        queryset = compiler.rules_queryset(rules, workspace=workspace)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = on")
                cursor.execute("SET LOCAL enable_hashagg = on")
        count = compiler.exact_count(queryset)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('jit'), current_setting('enable_hashagg')")
                assert cursor.fetchone() == ("on", "on")

    assert count == 2  # Ann and Eve
