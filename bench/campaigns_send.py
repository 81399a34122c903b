"""One worker renders and hands personalised messages to the locmem email backend (issue: 100,000 in < 60 s).

Measured: ``messages_send_due`` over a launched campaign, i.e. the whole Message protocol (batch claim by one
conditional UPDATE ... RETURNING, send-time consent/suppression/cap checks, per-recipient render, hand-off to the
backend, one committed UPDATE per sent row, email_sent events). Baselines in the same run: the same send with each
"sent" mark a blocking UPDATE through Django's cursor instead of pipelined; and rendering 1,000 recipients from the
template compiled once (what the loop does) against compiling it (nh3 + layout + css_inline) for each recipient.
Default n is 10,000 (``--scale 1`` for 100,000).
"""

import time

from django.core import mail
from django.core.mail import get_connection
from django.test.utils import override_settings

from bench.common import row, throwaway_workspace

FULL_SIZE = 100_000
BASELINE_SAMPLE = 1_000


def _audience(workspace, n: int, name: str):
    from customers.records import CustomerRecord
    from customers.services import customers_bulk_upsert
    from segments.services import segment_create_static

    records = [
        CustomerRecord(
            source="demo",
            external_id=f"{name}-{i}",
            email=f"{name}{i}@bench.example",
            first_name=f"Name{i}" if i % 3 else "",
            email_consent="subscribed",
            loyalty_points=i % 500,
        )
        for i in range(n)
    ]
    customers_bulk_upsert(workspace=workspace, records=records)
    from customers.models import Customer

    ids = list(
        Customer.objects.filter(workspace=workspace, external_id__startswith=f"{name}-").values_list("id", flat=True)
    )
    return segment_create_static(workspace=workspace, name=name, customer_ids=ids)


def _launch(workspace, template, segment, name: str):
    from campaigns.models import Campaign
    from campaigns.services import campaign_launch

    campaign = Campaign.objects.create(
        workspace=workspace, name=name, template=template, audience_segment_ids=[segment.pk], is_promotional=False
    )
    campaign_launch(workspace=workspace, campaign=campaign, dispatch=False)
    return campaign


def _send(workspace, campaign, n: int, connection) -> float:
    from campaigns import sending

    mail.outbox = []
    started = time.perf_counter()
    sent = sending.messages_send_due(workspace=workspace, campaign_id=campaign.pk, connection=connection).sent
    elapsed_ms = (time.perf_counter() - started) * 1000
    handed = len(mail.outbox)
    mail.outbox = []
    assert sent == n == handed, (sent, n, handed)
    return elapsed_ms


def run(args) -> list[dict]:
    from campaigns import marks, sending
    from campaigns.models import EmailTemplate, Message
    from campaigns.rendering import compile_email, render_email
    from campaigns.services import policy_update

    n = max(1000, int(FULL_SIZE * args.scale))
    connection = get_connection("django.core.mail.backends.locmem.EmailBackend")
    with throwaway_workspace("bench-send") as workspace:
        policy_update(workspace=workspace, frequency_cap_hours=0)
        template = EmailTemplate.objects.create(
            workspace=workspace,
            name="Bench",
            subject='{{ first_name | default: "Hi there" }}, new arrivals',
            preheader="Spring is here",
            blocks=[
                {
                    "type": "text",
                    "text": '# Hello {{ first_name | default: "friend" }}\n\nYou have '
                    '{{ loyalty_points }} points to spend on {{ top_category | default: "anything" }}.',
                },
                {
                    "type": "image",
                    "src": "https://cdn.example/hero.jpg",
                    "alt": "Spring",
                    "href": "https://shop.example/",
                },
                {
                    "type": "button",
                    "label": "Shop the collection",
                    "url": "https://shop.example/spring?c={{ promo_code }}",
                },
                {"type": "text", "text": "See you soon,\nThe team"},
            ],
        )
        segment = _audience(workspace, n, "audience")

        # The same audience twice: the baseline campaign first, each "sent" mark a blocking UPDATE through Django's
        # cursor (as before the marks were pipelined), then the real loop. Both campaigns are queued before either
        # is sent, so both runs see the same table. DEBUG is off, as in a production worker.
        baseline_campaign = _launch(workspace, template, segment, "baseline")
        campaign = _launch(workspace, template, segment, "main")
        with override_settings(DEBUG=False):
            marks.PIPELINE_MARKS = False
            try:
                baseline_send_ms = _send(workspace, baseline_campaign, n, connection)
            finally:
                marks.PIPELINE_MARKS = True
            send_ms = _send(workspace, campaign, n, connection)
        assert Message.objects.filter(campaign=campaign, status="sent").count() == n

        # Baseline: what compile-once saves. Rendering the same 1,000 recipients with the template compiled once
        # (what the send loop does) against sanitising, laying out and CSS-inlining it again for each recipient.
        compiled = sending.compiled_template(workspace=workspace, template=template)
        contexts = [
            sending.merge_context(
                workspace=workspace,
                customer={"id": i, "email": f"r{i}@bench.example", "first_name": f"Name{i}", "loyalty_points": i},
                template=template,
                token=f"token{i:06d}",
            )
            for i in range(BASELINE_SAMPLE)
        ]
        started = time.perf_counter()
        for context in contexts:
            render_email(compiled, context)
        sample_ms = (time.perf_counter() - started) * 1000
        body = sending.template_body_html(template)
        started = time.perf_counter()
        for context in contexts:
            fresh = compile_email(
                subject=template.subject, preheader=template.preheader, body_html=body, shop_name=workspace.name
            )
            render_email(fresh, context)
        baseline_sample_ms = (time.perf_counter() - started) * 1000
    return [
        row(
            "campaigns: render + hand to locmem, one worker (baseline: blocking marks)",
            n=n,
            median=send_ms,
            baseline=baseline_send_ms,
            target="100,000 < 60,000 ms",
        ),
        row(
            "campaigns: render only, compiled once vs per recipient",
            n=BASELINE_SAMPLE,
            median=sample_ms,
            baseline=baseline_sample_ms,
            target="compile once",
        ),
        row("campaigns: per message", n=1, median=send_ms / n, target="< 0.6 ms"),
    ]
