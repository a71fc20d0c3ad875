"""Request ids: taken from X-Request-ID when safe or made up, answered in the response, on every
log record of the request and of the tasks it queues; JSON lines in production."""

import io
import json
import logging
import re
import sys

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path

from tests.factories import UserFactory
from tests.usergroup.test_settings import load
from usergroup import logs
from usergroup.celery import app

pytestmark = pytest.mark.django_db

log = logging.getLogger("tests.request_ids")


def logging_view(request):
    log.info("inside the view")
    return HttpResponse("ok")


def failing_view(request):
    raise RuntimeError("deliberate failure for the request id test")


def queueing_view(request):
    from usergroup.tasks import ping

    return HttpResponse(json.dumps(ping.delay().get()), content_type="application/json")


urlpatterns = [
    path("log/", logging_view),
    path("fail/", failing_view),
    path("queue/", queueing_view),
    path("", include("usergroup.urls")),
]


@pytest.fixture
def lines():
    """JSON lines written through the same filter and formatter as production's console handler,
    from our test logger, Django's request logger and Celery's."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    loggers = [log, logging.getLogger("django.request"), logging.getLogger("celery.app.trace")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_request_without_an_id_gets_a_new_one():
    first = Client().get("/accounts/login/")
    second = Client().get("/accounts/login/")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize("incoming", ["7f3a9c2e5b1d4e6f8a0b1c2d3e4f5a6b", "Root-1.abc:def_9"])
def test_a_safe_incoming_id_is_kept(incoming):
    response = Client().get("/accounts/login/", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["a" * 65, "two words", "forged\nINFO admin logged in", 'quote"', "-starts-with-a-dash", "ünï"],
)
def test_an_unsafe_incoming_id_is_replaced(incoming):
    response = Client().get("/accounts/login/", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.urls(__name__)
def test_every_record_of_the_request_carries_its_id(lines):
    response = Client().get("/log/", HTTP_X_REQUEST_ID="req-123")
    assert response["X-Request-ID"] == "req-123"
    (line,) = lines()
    assert line["message"] == "inside the view"
    assert line["request_id"] == "req-123"
    assert line["level"] == "INFO" and line["logger"] == "tests.request_ids"
    # Outside a request, no id.
    log.info("after the request")
    assert "request_id" not in lines()[-1]


@pytest.mark.urls(__name__)
def test_djangos_error_log_carries_the_id_with_the_traceback(lines):
    client = Client(raise_request_exception=False)
    response = client.get("/fail/", HTTP_X_REQUEST_ID="req-500")
    assert response.status_code == 500
    assert response["X-Request-ID"] == "req-500"
    (line,) = [entry for entry in lines() if entry["logger"] == "django.request"]
    assert line["request_id"] == "req-500" and line["level"] == "ERROR"
    assert "RuntimeError: deliberate failure" in line["exception"]
    assert line["status_code"] == 500


def test_a_404_logged_after_the_middleware_still_carries_the_id(lines):
    response = Client().get("/no-such-page/", HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404
    (line,) = [entry for entry in lines() if entry["logger"] == "django.request"]
    assert line["request_id"] == "req-404"


@pytest.mark.urls(__name__)
def test_a_task_queued_by_a_request_logs_both_ids(lines):
    """Eager here (no broker): the task runs inside the request and sees its id; the worker case
    is tests/usergroup/test_celery_worker.py."""
    UserFactory()
    response = Client().get("/queue/", HTTP_X_REQUEST_ID="req-task")
    answer = response.json()
    assert answer["request_id"] == "req-task"
    assert answer["task_id"]
    (line,) = [entry for entry in lines() if entry["logger"] == "celery.app.trace"]
    assert line["request_id"] == "req-task" and line["task_id"] == answer["task_id"]
    assert logs.current_task_id.get() is None  # the task's id ends with the task


def test_the_request_id_travels_in_the_task_message_headers():
    from usergroup.tasks import ping

    headers = {}
    token = logs.current_request_id.set("req-queued")
    try:
        logs.add_request_id_to_message(headers=headers)
    finally:
        logs.current_request_id.reset(token)
    assert headers == {logs.TASK_HEADER: "req-queued"}
    # What a worker does with such a message: the task's records get both ids, then neither.
    answer = ping.apply(headers=headers).get()
    assert answer["request_id"] == "req-queued" and answer["task_id"]
    assert logs.current_request_id.get() is None and logs.current_task_id.get() is None
    # A forged header value is not taken.
    assert ping.apply(headers={logs.TASK_HEADER: "bad id\n"}).get()["request_id"] is None


def test_publishing_a_task_puts_the_request_id_in_its_message(monkeypatch):
    """Not eager: the message sent to the broker (in memory here, Redis in production) carries
    the id of the request that queued it."""
    import uuid

    from usergroup.tasks import ping

    monkeypatch.setitem(app.conf, "task_always_eager", False)
    queue_name = f"test-headers-{uuid.uuid4().hex[:8]}"
    token = logs.current_request_id.set("req-published")
    try:
        ping.apply_async(queue=queue_name)
    finally:
        logs.current_request_id.reset(token)
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(queue_name)
        try:
            message = queue.get(timeout=10)
            message.ack()
        finally:
            queue.close()
    assert message.headers[logs.TASK_HEADER] == "req-published"
    assert message.headers["task"] == "usergroup.tasks.ping"


def test_json_lines_hold_extras_and_exceptions():
    formatter = logs.JsonFormatter()
    record = logging.LogRecord("billing", logging.WARNING, __file__, 1, "charged %s", ("ann",), None)
    record.amount = 12
    record.member = object()
    logs.ContextFilter().filter(record)
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "charged ann"
    assert entry["amount"] == 12 and entry["member"].startswith("<object object")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    assert "request_id" not in entry and "task_id" not in entry
    try:
        raise ValueError("bad input")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: bad input" in json.loads(formatter.format(failed))["exception"]


def test_plain_lines_show_the_ids():
    formatter = logging.Formatter("%(levelname)s %(name)s [%(ids)s] %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    request_token = logs.current_request_id.set("r1")
    task_token = logs.current_task_id.set("t1")
    try:
        logs.ContextFilter().filter(record)
    finally:
        logs.current_task_id.reset(task_token)
        logs.current_request_id.reset(request_token)
    assert formatter.format(record) == "INFO x [request=r1 task=t1] hello"
    bare = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    logs.ContextFilter().filter(bare)
    assert formatter.format(bare) == "INFO x [-] hello"


LOG_PROBE = (
    "import django, logging; from django.conf import settings; django.setup(); "
    "from usergroup.logs import current_request_id; current_request_id.set('req-prod'); "
    "logging.getLogger('probe').warning('hello %s', 'world'); print(settings.LOG_FORMAT)"
)


def test_production_logs_json_lines_and_debug_readable_ones():
    prod = load({"SECRET_KEY": "x" * 50}, code=LOG_PROBE)
    assert prod.returncode == 0, prod.stderr
    assert prod.stdout.strip() == "json"
    entry = json.loads(prod.stderr.strip().splitlines()[-1])
    assert entry["message"] == "hello world" and entry["request_id"] == "req-prod"
    assert entry["level"] == "WARNING" and entry["logger"] == "probe"

    debug = load({"DEBUG": "1"}, code=LOG_PROBE)
    assert debug.stdout.strip() == "plain"
    assert re.search(r" WARNING probe \[request=req-prod\] hello world$", debug.stderr.strip())

    forced = load({"DEBUG": "1", "LOG_FORMAT": "json"}, code=LOG_PROBE)
    assert json.loads(forced.stderr.strip().splitlines()[-1])["message"] == "hello world"


def test_a_bad_log_format_fails_at_start_naming_the_variable():
    out = load({"DEBUG": "1", "LOG_FORMAT": "xml"})
    assert out.returncode != 0 and "LOG_FORMAT" in out.stderr
