import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.factories import MembershipFactory, WorkspaceFactory

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test databases, checked on the way out: no other session may still be using one.

    Dropping the database would fail with only a warning ("is being accessed by other users"), so a connection a
    test left open (a thread's, one opened inside Playwright, a worker's) fails the run here instead, with the
    sessions named."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all():
            if connection.vendor != "postgresql":
                continue
            # a backend whose client just hung up (a killed worker) leaves pg_stat_activity a moment later
            deadline = time.monotonic() + 5
            while True:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pid, application_name, backend_start, state, left(query, 200) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND backend_type = 'client backend'"
                    )
                    others = cursor.fetchall()
                if not others or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            connection.close()
            if others:
                sessions = "\n".join(
                    f"  pid {pid} {name!r} since {started:%H:%M:%S} ({state}): {query}"
                    for pid, name, started, state, query in others
                )
                pytest.fail(
                    f"{len(others)} other session(s) still use the test database {connection.settings_dict['NAME']}:"
                    f"\n{sessions}\nClose the connections a test opens (in a thread, inside Playwright, ...)."
                )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery():
    """Tasks run in-process unless a test starts a real worker (the ``celery_worker`` fixture)."""
    from crm.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Acme Outfitters", slug="acme")


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory(name="Globex Goods", slug="globex")


@pytest.fixture
def owner(workspace):
    return MembershipFactory(workspace=workspace, role="owner", user__email="owner@acme.test").user


def member_client(workspace, role: str, email: str | None = None) -> Client:
    membership = MembershipFactory(workspace=workspace, role=role, **({"user__email": email} if email else {}))
    client = Client()
    client.force_login(membership.user)
    client.membership = membership  # type: ignore[attr-defined]
    return client


@pytest.fixture
def owner_client(workspace, owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def make_member_client(db):
    return member_client


def required_service_url(name: str) -> str:
    """The URL of a service a test needs. When CI sets it the test must run; locally without it, it skips."""
    value = os.environ.get(name, "")
    if not value:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not set, but CI must run this test against the real service")
        pytest.skip(f"{name} is not set: this test needs the real service")
    return value


@pytest.fixture
def redis_url():
    return required_service_url("REDIS_URL")


@pytest.fixture
def postgres_only(db):
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        required_service_url("DATABASE_URL")
        pytest.skip("this test is about PostgreSQL behaviour")


def _worker_env(redis: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    db = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        **(extra or {}),
        "REDIS_URL": redis,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DJANGO_ENV": "development",
    }
    if db["ENGINE"] == "django.db.backends.postgresql":
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    return env


class CeleryWorker:
    """A real Celery worker process on Redis, reading the test database. Use with ``transactional_db``."""

    def __init__(self, redis: str, queues: str = "default,sync,email,analytics", env: dict[str, str] | None = None):
        self.redis = redis
        self.extra_env = env or {}
        self.queues = queues
        self.process: subprocess.Popen | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"celery-worker-{os.getpid()}-{time.time_ns()}.log"

    def start(self) -> "CeleryWorker":
        import redis as redis_lib

        redis_lib.Redis.from_url(self.redis).flushdb()
        celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                celery,
                "-A",
                "crm",
                "worker",
                "-Q",
                self.queues,
                "-P",
                "solo",
                "-c",
                "1",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=_worker_env(self.redis, self.extra_env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "ready." in self.log_path.read_text():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log_path.read_text()}")
            time.sleep(0.2)
        raise RuntimeError(f"celery worker did not start:\n{self.log_path.read_text()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def celery_worker_env() -> dict[str, str]:
    """Extra environment for the worker process; override in a test module (e.g. EMAIL_URL of an SMTP sink)."""
    return {}


@pytest.fixture
def celery_worker(redis_url, transactional_db, settings, celery_worker_env):
    """Start a real worker; the test process publishes to the same Redis (no eager mode)."""
    from crm.celery import app

    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        required_service_url("DATABASE_URL")
        pytest.skip("a worker process cannot see the in-memory SQLite test database")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.broker_url = redis_url
    worker = CeleryWorker(redis_url, env=celery_worker_env).start()
    try:
        yield worker
    finally:
        worker.stop()
        app.conf.task_always_eager = django_settings.CELERY_TASK_ALWAYS_EAGER


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
                import email

                message = email.message_from_bytes(envelope.content)
                sink.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": message})
                return "250 OK"

        import socket

        with socket.socket() as probe:  # aiosmtpd checks readiness by connecting, so it needs a real port
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "var" / "screenshots"


@contextlib.contextmanager
def playwright_session():
    """Playwright's sync API, closing on the way out the database connections the test opened inside it.

    While it is open, the test's code runs in a context of its own (Playwright switches greenlets), where Django's
    ``connections`` are not the ones of the code around it: the first query inside opens a second PostgreSQL
    session that pytest-django never sees, so it would stay open and keep the test database from being dropped.
    A connection inside an atomic block (the ``db`` fixture's transaction) is left open for its rollback."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            yield playwright
        finally:
            for connection in connections.all(initialized_only=True):
                if not connection.in_atomic_block:
                    connection.close()


@pytest.fixture
def chromium():
    """Debian's Chromium driven by Playwright. Required in CI; skipped locally when it is not installed.

    One per test: Playwright's sync API keeps an event loop running while it is open, so a browser kept for the
    whole session would break any other test that starts Playwright itself."""
    executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(executable).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is not installed at {executable}")
        pytest.skip("Chromium is not installed")
    with playwright_session() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium, live_server):
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
