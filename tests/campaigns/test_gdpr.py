from django_scopes import scope

from campaigns.models import Message, Suppression
from customers.gdpr import customer_data_export, customer_erase
from tests.campaigns.factories import MessageFactory, SuppressionFactory
from tests.factories import CustomerFactory


def test_export_lists_the_customers_emails_and_suppression(workspace, owner):
    ann = CustomerFactory(workspace=workspace, email="ann@example.org")
    MessageFactory(
        campaign__workspace=workspace, customer=ann, subject="Spring is here, Ann", to_email=ann.email, status="sent"
    )
    SuppressionFactory(workspace=workspace, email="ann@example.org", reason="unsubscribed")

    with scope(workspace=workspace):
        export = customer_data_export(workspace=workspace, customer=ann, actor=owner)

    assert [m["subject"] for m in export["campaigns"]["messages"]] == ["Spring is here, Ann"]
    assert [s["reason"] for s in export["campaigns"]["suppressed"]] == ["unsubscribed"]


def test_erase_scrubs_messages_and_suppression_but_keeps_report_counts(workspace, owner):
    ann = CustomerFactory(workspace=workspace, email="ann@example.org")
    message = MessageFactory(
        campaign__workspace=workspace, customer=ann, subject="Hi Ann", to_email=ann.email, status="sent"
    )
    SuppressionFactory(workspace=workspace, email="ann@example.org")

    with scope(workspace=workspace):
        customer_erase(workspace=workspace, customer=ann, actor=owner)
        message.refresh_from_db()
        assert (message.to_email, message.subject, message.status) == ("", "", "sent")
        assert Message.objects.filter(campaign=message.campaign).count() == 1
        assert not Suppression.objects.filter(email="ann@example.org").exists()
