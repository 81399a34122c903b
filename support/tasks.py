"""Celery entry points: take ids, open the workspace scope, call the service of the same name."""

import logging
import smtplib

from celery import shared_task

from crm.tasking import workspace_scope

logger = logging.getLogger(__name__)

TRANSIENT_EMAIL_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError)


@shared_task(bind=True, autoretry_for=TRANSIENT_EMAIL_ERRORS, retry_backoff=True, retry_backoff_max=600, max_retries=6)
def ticket_message_send(self, workspace_id: int, message_id: int) -> bool:
    from support.services import ticket_message_deliver, ticket_message_mark_failed

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return False
        try:
            return ticket_message_deliver(workspace=workspace, message_id=message_id)
        except TRANSIENT_EMAIL_ERRORS:
            if self.request.retries >= self.max_retries:
                ticket_message_mark_failed(workspace=workspace, message_id=message_id, error="gave up after retries")
            raise
        except Exception as error:  # a permanent refusal (bad address...): record it, do not retry
            logger.exception("reply %s could not be sent", message_id)
            ticket_message_mark_failed(workspace=workspace, message_id=message_id, error=str(error))
            return False


@shared_task(bind=True, autoretry_for=TRANSIENT_EMAIL_ERRORS, retry_backoff=True, retry_backoff_max=600, max_retries=6)
def survey_send(self, workspace_id: int, survey_id: int) -> bool:
    from support import surveys

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return False
        return surveys.survey_send(workspace=workspace, survey_id=survey_id)


@shared_task
def support_minute_tick(workspace_id: int) -> int:
    """Schedule NPS surveys for new orders and enqueue the surveys that are due. Called by crm.tasks.minute_tick."""
    from support import surveys

    with workspace_scope(workspace_id) as workspace:
        if workspace is None:
            return 0
        surveys.surveys_schedule_nps_for_new_orders(workspace=workspace)
        due = surveys.surveys_due(workspace=workspace)
    for survey_id in due:
        survey_send.delay(workspace_id, survey_id)
    return len(due)
