"""PostgreSQL planner settings for one statement or block."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def local_settings(**settings: str) -> Iterator[None]:
    """Run a block in a transaction (a savepoint inside an outer one) with some PostgreSQL settings changed, e.g.
    ``local_settings(jit="off")``; an enclosing transaction gets its own values back afterwards (on an error the
    savepoint's rollback undoes them). Other databases just get the transaction."""
    with transaction.atomic():
        if connection.vendor != "postgresql":
            yield
            return
        with connection.cursor() as cursor:
            previous = {}
            for name, value in settings.items():
                cursor.execute("SELECT current_setting(%s)", [name])
                (previous[name],) = cursor.fetchone()
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
            yield
            for name, value in previous.items():
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
