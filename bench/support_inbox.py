"""Support: the inbox, routing, SLA arithmetic and inbound email, each against a slower baseline in the same run.

Full size (``--scale 1``): 100,000 tickets over 120 days with a message each (the last week's open, pending or
solved, older ones solved or closed), 20 reps in 3 teams; default ``--scale 0.1``.

- inbox page: the first 100 "all open" tickets as the inbox selector builds them (joins + one prefetch) and
  the counts of every view, vs the same rows read naively (a query per row for customer, assignee, team, tags);
- inbox search: a word in subjects or message bodies (EXISTS subquery), no baseline;
- routing: one ticket_route (rules, then fewest-open among a team's available reps in one aggregate query) vs
  counting each rep's open tickets with a query per rep;
- SLA due time: add_business_minutes over business-hour windows vs stepping minute by minute;
- inbound email: parse + thread + store one reply by In-Reply-To, per message.
"""

import datetime as dt
import random
import uuid
import zoneinfo
from email.message import EmailMessage

from django.utils import timezone

from bench.common import median_ms, row, throwaway_workspace

FULL_TICKETS = 100_000
WORDS = ["zipper", "refund", "size"]
DONE = ["solved", "closed"]


def _fill(workspace, n_tickets: int):
    from crm.models import Membership, User
    from customers.models import Customer
    from support.models import Team, TeamMember, Ticket, TicketMessage, TicketTag

    rng = random.Random(1)
    tag = uuid.uuid4().hex[:6]
    users = User.objects.bulk_create([User(email=f"rep{i}-{tag}@bench.test", full_name=f"Rep {i}") for i in range(20)])
    reps = Membership.objects.bulk_create(
        [Membership(workspace=workspace, user=u, role="support", is_available=i % 7 != 0) for i, u in enumerate(users)]
    )
    teams = Team.objects.bulk_create([Team(workspace=workspace, name=name) for name in ("Front", "Senior", "Billing")])
    TeamMember.objects.bulk_create(
        [TeamMember(workspace=workspace, team=teams[i % 3], membership=rep) for i, rep in enumerate(reps)]
    )
    customers = Customer.objects.bulk_create(
        [Customer(workspace=workspace, email=f"c{i}@shopper.test", first_name=f"C{i}") for i in range(n_tickets // 4)],
        batch_size=2000,
    )
    now = timezone.now()
    # Like a real desk: the last week's tickets in every state, older ones solved or closed (a backlog of a few
    # thousand at full size, not half the history).
    statuses = ["new", "open", "pending", "solved", "closed", "closed", "solved"]
    tickets = []
    for i in range(n_tickets):
        created = now - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 120))
        tickets.append(
            Ticket(
                workspace=workspace,
                number=1000 + i,
                subject=f"Order question {i} {rng.choice(['zipper', 'refund', 'size'])}",
                status=rng.choice(statuses) if created > now - dt.timedelta(days=7) else rng.choice(DONE),
                priority=rng.choice(["low", "normal", "normal", "high"]),
                customer=customers[i % len(customers)],
                requester_email=f"c{i % len(customers)}@shopper.test",
                assignee=rng.choice(reps) if i % 5 else None,
                team=teams[i % 3],
                created_at=created,
                assigned_at=created,
                first_response_due_at=created + dt.timedelta(hours=4),
                resolution_due_at=created + dt.timedelta(hours=16),
            )
        )
    tickets = Ticket.objects.bulk_create(tickets, batch_size=2000)
    TicketMessage.objects.bulk_create(
        [
            TicketMessage(
                workspace=workspace,
                ticket=t,
                kind="customer",
                body_html="<p>Hello</p>",
                body_text=f"Hello, about my parcel number {t.number}",
                created_at=t.created_at,
                email_message_id=f"<{t.number}-{tag}@shopper.test>",
            )
            for t in tickets
        ],
        batch_size=2000,
    )
    TicketTag.objects.bulk_create(
        [TicketTag(workspace=workspace, ticket=t, name="vip") for t in tickets[::10]], batch_size=2000
    )
    from bench.segments_rfm import analyze

    analyze(Ticket, TicketMessage, TicketTag, Customer, Membership)
    return users, reps, teams, tag


def _naive_first_page(workspace) -> list:
    from support.models import UNRESOLVED_STATUSES, Ticket

    rows = []
    for ticket in Ticket.objects.filter(workspace=workspace, status__in=UNRESOLVED_STATUSES).order_by("-updated_at")[
        :100
    ]:
        rows.append(
            (
                ticket.customer.email if ticket.customer_id else "",
                ticket.assignee.user.email if ticket.assignee_id else "",
                ticket.team.name if ticket.team_id else "",
                [t.name for t in ticket.tags.all()],
            )
        )
    return rows


def _page(workspace, membership, filters) -> list:
    from support import selectors

    tickets = selectors.inbox_page(workspace=workspace, membership=membership, filters=filters)
    selectors.inbox_counts(workspace=workspace, membership=membership)
    return [
        (
            t.customer.email if t.customer else "",
            t.assignee.user.email if t.assignee else "",
            t.team.name if t.team else "",
            t.tag_names,
        )
        for t in tickets
    ]


def _naive_minutes(start: dt.datetime, minutes: int, hours: dict, tz: str) -> dt.datetime:
    zone = zoneinfo.ZoneInfo(tz)
    cursor = start
    left = minutes
    while left > 0:
        local = cursor.astimezone(zone)
        window = hours.get(str(local.isoweekday()))
        if window and window[0] <= local.strftime("%H:%M") < window[1]:
            left -= 1
        cursor += dt.timedelta(minutes=1)
    return cursor


def run(args) -> list[dict]:
    from crm.models import User
    from support import selectors
    from support.inbound import inbound_email_process, parse_message
    from support.models import Ticket
    from support.routing import available_reps, pick_load_balanced, ticket_route
    from support.sla import add_business_minutes

    n_tickets = max(1000, int(FULL_TICKETS * args.scale))
    rows = []
    with throwaway_workspace("support") as workspace:
        users, reps, teams, tag = _fill(workspace, n_tickets)
        try:
            filters = selectors.InboxFilters(view="all")
            page = median_ms(lambda: _page(workspace, reps[1], filters), repeat=args.repeat)
            naive = median_ms(lambda: _naive_first_page(workspace), repeat=args.repeat)
            rows.append(
                row(
                    "inbox first page + view counts",
                    n=n_tickets,
                    median=page,
                    baseline=naive,
                    target="< 150 ms at 100k tickets",
                )
            )
            search = selectors.InboxFilters(view="all", status="any", q="refund")
            rows.append(
                row(
                    "inbox search (subject or message)",
                    n=n_tickets,
                    median=median_ms(lambda: _page(workspace, reps[1], search), repeat=args.repeat),
                    target="< 300 ms at 100k tickets",
                )
            )

            ticket = Ticket.objects.filter(workspace=workspace).first()

            def naive_route():
                candidates = list(available_reps(workspace=workspace, team=teams[0]))
                return min(
                    candidates,
                    key=lambda m: Ticket.objects.filter(
                        workspace=workspace, assignee=m, status__in=["new", "open", "pending"]
                    ).count(),
                )

            rows.append(
                row(
                    "route one ticket (rules + fewest open)",
                    n=n_tickets,
                    median=median_ms(lambda: ticket_route(workspace=workspace, ticket=ticket), repeat=args.repeat),
                    baseline=median_ms(naive_route, repeat=args.repeat),
                    target="< 20 ms",
                )
            )
            assert pick_load_balanced(workspace=workspace, team=teams[0]) is not None

            hours = {str(d): ["09:00", "17:00"] for d in range(1, 6)}
            starts = [timezone.now() + dt.timedelta(minutes=37 * i) for i in range(200)]
            fast = median_ms(
                lambda: [add_business_minutes(s, 960, business_hours=hours, timezone="Europe/Berlin") for s in starts],
                repeat=args.repeat,
            )
            slow = (
                median_ms(
                    lambda: [_naive_minutes(s, 960, hours, "Europe/Berlin") for s in starts[:20]],
                    repeat=max(1, args.repeat // 2),
                )
                * 10
            )
            rows.append(row("SLA due time x200 (16 business h)", n=200, median=fast, baseline=slow, target="< 10 ms"))

            counter = iter(range(10**9))

            def receive():
                number = next(counter)
                msg = EmailMessage()
                msg["From"] = f"c{number % 100}@shopper.test"
                msg["Subject"] = "Re: Order question"
                msg["Message-ID"] = f"<reply-{number}-{tag}@shopper.test>"
                msg["In-Reply-To"] = f"<{1000 + number}-{tag}@shopper.test>"
                msg.set_content("Thanks, any news?\n\nOn Mon, Support wrote:\n> quoted")
                inbound_email_process(workspace=workspace, inbound=parse_message(msg))

            rows.append(
                row(
                    "inbound email threaded by In-Reply-To",
                    n=1,
                    median=median_ms(receive, repeat=max(args.repeat, 20)),
                    target="< 50 ms per message",
                )
            )
        finally:
            User.objects.filter(pk__in=[u.pk for u in users]).delete()
    return rows
