"""The load test's members and creator (started by bench/load/run.py, which documents the run).

Each simulated member signs in through the real sign-in form with a demo account of their own,
then browses with the mix below; the creator opens the dashboard and the CRM. Every sample's time
is kept exactly, with the server's own time from the `Server-Timing` header (SERVER_TIMING on), and
written at the end to LOAD_SAMPLES for run.py's report.

Environment: LOAD_TARGETS (the JSON file run.py writes: slugs, ids, accounts, search words),
LOAD_SAMPLES (where to write the samples) and LOAD_THINK ("1,3": seconds of think time between
requests, drawn uniformly; "0": none).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading
import time

from locust import HttpUser, between, constant, events, task

TARGETS = json.loads(open(os.environ["LOAD_TARGETS"], encoding="utf-8").read())  # noqa: SIM115
_think = [float(x) for x in os.environ.get("LOAD_THINK", "1,3").split(",")]
WAIT = constant(0) if _think == [0.0] else between(_think[0], _think[-1])
BEACON_TOKEN = re.compile(r'data-beacon-token="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
_accounts = itertools.count()
_lock = threading.Lock()


def _next_index() -> int:
    with _lock:
        return next(_accounts)


SAMPLES: dict[str, dict[str, list]] = {}  # name -> client ms, server ms, failures


SIGNED_IN = threading.Event()  # every simulated member has started (and signed in)
SIGN_IN = {"sign-in form", "sign in"}


COUNTING_SINCE: list[float] = []


@events.spawning_complete.add_listener
def _all_signed_in(user_count: int, **kwargs) -> None:
    COUNTING_SINCE.append(time.monotonic())
    SIGNED_IN.set()


@events.request.add_listener
def _record(request_type, name, response_time, response, exception, **kwargs) -> None:
    """Keep every sample's exact times: the client's, and the server's own from Server-Timing.
    Pages are counted once every member has signed in: while they do, password hashing holds
    the workers, which says nothing of the pages."""
    if name not in SIGN_IN and not SIGNED_IN.is_set():
        return
    sample = SAMPLES.setdefault(name, {"client": [], "server": [], "failures": []})
    sample["client"].append(response_time)
    match = response is not None and SERVER_TIMING.search(response.headers.get("Server-Timing", ""))
    if match:
        sample["server"].append(float(match.group(1)))
    if exception is not None:
        sample["failures"].append(str(exception)[:200])


@events.quitting.add_listener
def _write_samples(environment, **kwargs) -> None:
    with open(os.environ["LOAD_SAMPLES"], "w", encoding="utf-8") as out:
        counted = time.monotonic() - COUNTING_SINCE[0] if COUNTING_SINCE else None
        json.dump({"samples": SAMPLES, "counted_seconds": counted}, out)


class SignedIn(HttpUser):
    abstract = True
    wait_time = WAIT

    def sign_in(self, email: str, password: str) -> None:
        index = _next_index()
        # A browser's agent: the site counts no views of bots (python-requests is one), and the
        # content page then sends no reading beacon.
        self.client.headers["User-Agent"] = BROWSER
        # One address per simulated visitor, as behind a proxy (TRUSTED_PROXY_COUNT=1 on the site):
        # without it the per-address sign-in limit would refuse most of them.
        self.client.headers["X-Forwarded-For"] = (
            f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
        )
        form = self.client.get("/accounts/login/", name="sign-in form")
        token = CSRF_INPUT.search(form.text)
        with self.client.post(
            "/accounts/login/",
            data={
                "login": email,
                "password": password,
                "csrfmiddlewaretoken": token.group(1) if token else "",
            },
            headers={"Referer": self.host + "/accounts/login/"},
            name="sign in",
            catch_response=True,
        ) as response:
            if "sessionid" not in self.client.cookies:
                response.failure(f"sign-in failed for {email}: {response.status_code}")

    def csrf(self) -> str:
        return self.client.cookies.get("csrftoken", "")

    def post(self, path: str, *, name: str, data: dict[str, str] | None = None, expect=(200, 204, 302)):
        headers = {"X-CSRFToken": self.csrf(), "Referer": self.host + "/"}
        with self.client.post(path, data=data or {}, headers=headers, name=name, catch_response=True,
                              allow_redirects=False) as response:  # fmt: skip
            if response.status_code not in expect:
                response.failure(f"{response.status_code}")


class Member(SignedIn):
    weight = 19

    def on_start(self) -> None:
        emails = TARGETS["members"]
        self.sign_in(emails[_next_index() % len(emails)], TARGETS["member_password"])

    @task(6)
    def home(self) -> None:
        self.client.get("/", name="home")

    @task(5)
    def library(self) -> None:
        self.client.get("/library/", name="library")

    @task(2)
    def search(self) -> None:
        self.client.get("/library/", params={"q": random.choice(TARGETS["words"])}, name="library search")

    @task(6)
    def content(self) -> None:
        slug = random.choice(TARGETS["items"])
        page = self.client.get(f"/library/{slug}/", name="content")
        token = BEACON_TOKEN.search(page.text)
        if token:  # what beacon.js sends when the reader leaves the page
            dwell = random.randint(5, 600)
            self.post("/library/beacon/", name="beacon", data={
                "token": token.group(1), "dwell": str(dwell), "scroll": str(random.randint(0, 100)),
                "completed": "on" if random.random() < 0.3 else "",
            })  # fmt: skip

    @task(3)
    def community(self) -> None:
        self.client.get("/community/", name="community index")

    @task(3)
    def category(self) -> None:
        self.client.get(f"/community/c/{random.choice(TARGETS['categories'])}/", name="category")

    @task(6)
    def thread(self) -> None:
        self.client.get(random.choice(TARGETS["threads"])["url"], name="thread")

    @task(1)
    def reply(self) -> None:
        thread = random.choice(TARGETS["threads"])
        self.post(f"/community/t/{thread['pk']}/reply/", name="reply",
                  data={"body": f"Load test reply {random.randint(1, 10**9)}: thanks, this helped."})  # fmt: skip

    @task(3)
    def notifications(self) -> None:
        self.client.get("/community/notifications/", name="notifications")

    @task(2)
    def points(self) -> None:
        self.client.get("/points/", name="points")

    @task(1)
    def pricing(self) -> None:
        self.client.get("/pricing/", name="pricing")

    @task(3)
    def yardstick(self) -> None:
        self.client.get("/_bench/yardstick/", name="yardstick (minimal page)")


class Creator(SignedIn):
    weight = 1

    def on_start(self) -> None:
        self.sign_in(TARGETS["creator"], TARGETS["creator_password"])

    @task(2)
    def dashboard(self) -> None:
        self.client.get("/admin/insights/dashboard/", name="creator dashboard")

    @task(3)
    def crm(self) -> None:
        personas = TARGETS["personas"]
        params = {"persona": random.choice(personas)} if personas and random.random() < 0.5 else {}
        self.client.get("/admin/insights/crm/", params=params, name="creator CRM list")
