"""Recording "sent" once the email backend accepted a message: one committed row update per message.

The Message protocol needs the mark of message k committed before message k+1 is handed to the backend, so that a
killed worker can only ever send again the one message it had in flight. A blocking UPDATE per message made the
worker sit idle while PostgreSQL updated the row (and its indexes) and committed. On PostgreSQL the marks are
therefore *pipelined one deep*: the prepared UPDATE of message k and a Sync (its own implicit transaction) are
written to the server without waiting; the worker renders and builds message k+1 meanwhile, and only then waits
for the answer to mark k (``confirm``) before it hands message k+1 over. The guarantee is the blocking UPDATE's;
the database work overlaps the worker's own.

Deeper pipelining is not safe: a server whose client died stops at its next attempt to answer, so marks that had
reached it but were not yet executed are lost (``tests/campaigns/test_marks.py`` kills a worker to show the bound).
With ``synchronous_commit`` off for the send loop (see ``campaigns.sending``), a crash of the PostgreSQL server
itself, not of the worker, could still forget the last fraction of a second of marks.

This talks to libpq through psycopg's documented ``psycopg.pq`` wrapper: psycopg's own pipeline object offers
only a sync that waits, and costs more per statement. Nothing else uses the connection while marks are open.
"""

import datetime as dt
import logging
import secrets
import select
from collections import deque

from django.db import connection as db_connection
from django.db.backends.utils import CursorWrapper

from campaigns.models import Message

logger = logging.getLogger(__name__)

# ``workspace_id + 0`` keeps the tenant check but stops the planner from preferring a workspace-leading index over
# the primary key on a freshly filled, not yet analysed table (that made each UPDATE a scan).
MARK_SENT_SQL = (
    f"UPDATE {Message._meta.db_table} SET status = %s, sent_at = %s, to_email = %s, subject = %s, "
    "esp_message_id = %s, claim_token = '' WHERE id = %s AND workspace_id + 0 = %s"
)
MARK_SENT_PREPARED = (
    f"UPDATE {Message._meta.db_table} SET status = 'sent', sent_at = $1, to_email = $2, subject = $3, "
    "esp_message_id = $4, claim_token = '' WHERE id = $5 AND workspace_id + 0 = $6"
)
# False: one blocking UPDATE per mark through Django's cursor, as before pipelining (the benchmark's baseline).
PIPELINE_MARKS = True


def _clean(value: str) -> str:
    return value.replace("\x00", "")  # PostgreSQL text cannot hold NUL; a refused mark would mean a resend


class SentMarks:
    """``with SentMarks(workspace_id=...) as marks:`` then, per message, ``marks.confirm()`` before handing it to
    the backend and ``marks.sent(...)`` once the backend accepted it. ``refused`` lists the message ids whose mark
    the database rejected (logged; those rows stay ``sending`` and go back to the queue after the lease)."""

    def __init__(self, *, workspace_id: int):
        self.workspace_id = workspace_id
        self.refused: list[int] = []
        self._pipeline: _Pipeline | None = None
        self._cursor: CursorWrapper | None = None

    def __enter__(self) -> "SentMarks":
        db_connection.ensure_connection()
        raw = db_connection.connection
        if (
            PIPELINE_MARKS
            and db_connection.vendor == "postgresql"
            and not db_connection.in_atomic_block
            and hasattr(raw, "pgconn")
            and raw.pgconn.pipeline_status == 0
        ):
            self._pipeline = _Pipeline(raw.pgconn)
        else:  # SQLite, or inside a transaction (tests): a plain UPDATE per message
            self._cursor = db_connection.cursor()
        return self

    def confirm(self) -> None:
        """Wait until the marks written so far are committed; called before the next message is handed over."""
        if self._pipeline is not None:
            self._pipeline.wait()

    def sent(self, *, message_id: int, sent_at: dt.datetime, to_email: str, subject: str, esp_message_id: str) -> None:
        if self._pipeline is not None:
            self._pipeline.execute(
                message_id,
                [
                    sent_at.isoformat().encode(),
                    _clean(to_email).encode(),
                    _clean(subject).encode(),
                    _clean(esp_message_id).encode(),
                    str(message_id).encode(),
                    str(self.workspace_id).encode(),
                ],
            )
        elif self._cursor is not None:
            self._cursor.execute(
                MARK_SENT_SQL,
                [Message.Status.SENT, sent_at, to_email, subject, esp_message_id, message_id, self.workspace_id],
            )

    def __exit__(self, *exc_info) -> None:
        if self._pipeline is not None:
            try:
                self.refused = self._pipeline.close()
            except Exception:
                # The connection is in an unknown state: drop it, Django opens a fresh one on the next query.
                db_connection.close()
                raise
            if self.refused:
                logger.error("the database refused the sent mark of messages %s", self.refused)
        if self._cursor is not None:
            self._cursor.close()


class _Pipeline:
    """A libpq connection in pipeline mode, a prepared UPDATE, and a Sync after each execution."""

    def __init__(self, pgconn):
        from psycopg import pq

        self.status = pq.ExecStatus
        self.pgconn = pgconn
        self.name = f"campaigns_mark_sent_{secrets.token_hex(4)}".encode()
        # One entry per Sync written and not yet answered: the message id it marks (None for set-up statements).
        self.unanswered: deque[int | None] = deque()
        self.refused: list[int] = []
        pgconn.enter_pipeline_mode()
        pgconn.send_prepare(self.name, MARK_SENT_PREPARED.encode())
        self._sync(None)

    def execute(self, message_id: int, params: list[bytes]) -> None:
        self.pgconn.send_query_prepared(self.name, params)
        self._sync(message_id)

    def close(self) -> list[int]:
        try:
            self.pgconn.send_query_params(b"DEALLOCATE " + self.name, None)
            self._sync(None)
            self.wait()
        finally:
            self.pgconn.exit_pipeline_mode()
        return self.refused

    def _sync(self, label: int | None) -> None:
        self.pgconn.pipeline_sync()
        self.unanswered.append(label)
        # Written out to the socket now, so the server starts on it while the worker renders the next message.
        while self.pgconn.flush():
            readable, _, _ = select.select([self.pgconn.socket], [self.pgconn.socket], [], 10)
            if readable:
                self.pgconn.consume_input()

    def wait(self) -> None:
        """Read answers until every Sync written has been answered (its transaction committed or refused)."""
        pgconn = self.pgconn
        while self.unanswered:
            if pgconn.is_busy():
                select.select([pgconn.socket], [], [], 10)
                pgconn.consume_input()
                continue
            result = pgconn.get_result()
            if result is None:  # the end of one statement's results
                continue
            if result.status == self.status.PIPELINE_SYNC:
                self.unanswered.popleft()
            elif result.status in (self.status.FATAL_ERROR, self.status.PIPELINE_ABORTED):
                label = self.unanswered[0]
                if label is None:
                    raise RuntimeError(result.get_error_message())
                self.refused.append(label)
