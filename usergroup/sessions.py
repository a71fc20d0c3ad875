"""The session engine (settings.SESSION_ENGINE): Django's database sessions, read with one
prepared statement instead of a queryset.

Every request with a session cookie reads its session row; through the ORM that lookup costs
about 0.2 ms of CPU to build the query (ten times the round trip), on every page a member opens.
The statement is the ORM's own (the key, and only an unexpired row), and everything else (saving,
creating, deleting, clearing expired rows, the `django_session` table and its rows) is Django's
database engine unchanged, so sessions stay in PostgreSQL (docs/operations.md, "Scaling across
machines") and ending one deletes its row, at once, for every process.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import connections, router
from django.utils import timezone


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self) -> AbstractBaseSession | None:
        key = self.session_key  # None unless a well-formed key (SessionBase checks it)
        if key is None:
            self._session_key = None
            return None
        model = self.model
        connection = connections[router.db_for_read(model)]
        table = connection.ops.quote_name(model._meta.db_table)
        now = connection.ops.adapt_datetimefield_value(timezone.now())  # as the ORM passes it
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT session_data, expire_date FROM {table} "  # noqa: S608 - the model's own table
                "WHERE session_key = %s AND expire_date > %s",
                [key, now],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        data, expires = row
        # Through the backend's converters, as the ORM would: SQLite returns text.
        column = model._meta.get_field("expire_date").get_col(model._meta.db_table)
        for converter in connection.ops.get_db_converters(column):
            expires = converter(expires, column, connection)
        return model(session_key=key, session_data=data, expire_date=expires)
