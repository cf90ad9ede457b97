"""One real browser run through the admin: a dispatcher starts three pending jobs in bulk.

Drives Debian's Chromium (/usr/bin/chromium) with Playwright; never downloads a browser. Skipped,
with the reason, where either is missing.
"""

import shutil
from pathlib import Path

import pytest
from django.db import connections

from jobs.models import Job, LifeCycleState, RunState, TransitionRun, TransitionRunChunk
from jobs.services import runs
from tests.factories import (
    JobCancellationReasonFactory,
    JobFactory,
    JobStatusFactory,
    JobTypeFactory,
    UserFactory,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect
pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the ORM calls made here while it
    # runs are ordinary synchronous test code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()


def log_in(page, server: str) -> None:
    """As the dispatcher, landing on the job list."""
    page.goto(f"{server}/admin/login/?next=/admin/jobs/job/")
    page.fill("#id_username", "dispatcher")
    page.fill("#id_password", "dispatcher-pw")
    page.click("input[type=submit]")


def test_a_dispatcher_starts_three_jobs_then_completes_one_and_cancels_another(
    live_server, browser_page
):
    UserFactory(
        username="dispatcher",
        password="dispatcher-pw",
        is_staff=True,
        permissions=[
            "view_job",
            "view_all_jobs",
            "start_progress_job",
            "complete_job",
            "cancel_job",
        ],
    )
    JobCancellationReasonFactory(name="No access")
    job_type = JobTypeFactory(name="Repair")
    onsite = JobStatusFactory(name="On site")
    job_type.allowed_statuses.add(onsite)
    pending = JobFactory.create_batch(4, type=job_type)
    JobFactory(type=job_type, life_cycle_state=LifeCycleState.COMPLETED)
    page = browser_page

    log_in(page, live_server.url)

    page.click("#changelist-filter >> text=Pending")
    # expect() waits for the page the click loads; a bare count() could read the old one
    expect(page.locator("#result_list tbody tr")).to_have_count(4)
    for row in range(3):
        page.locator("#result_list tbody tr input.action-select").nth(row).check()
    page.select_option("select[name=action]", "start_progress_action")
    page.click("button[name=index]")

    expect(page.locator("#will-run")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-start-progress-confirmation.png"), full_page=True)
    expect(page.locator("#will-run-count")).to_have_text("3")
    page.select_option("select[name=status]", label="On site")
    page.click("input[name=confirm]")

    expect(page.locator("ul.messagelist")).to_contain_text("3 jobs started.")
    # the list keeps the Pending filter, so one job is left; the started ones are In progress
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.click("#changelist-filter >> text=In progress")
    expect(page.locator("#result_list tbody td.field-state")).to_have_text(["In progress"] * 3)
    started = Job.objects.filter(life_cycle_state=LifeCycleState.IN_PROGRESS)
    assert started.count() == 3
    assert {job.status for job in started} == {onsite}
    assert set(started.values_list("pk", flat=True)) <= {job.pk for job in pending}

    # complete one started job from its page
    done = started.first()
    page.goto(f"{live_server.url}/admin/jobs/job/{done.pk}/change/")
    expect(page.locator("#start-progress-button")).to_have_count(0)
    # Each choice beside a button is labelled; Django's own "History" (admin edits only) is gone.
    expect(page.get_by_label("Complete in status")).to_be_visible()
    expect(page.get_by_label("Cancellation reason")).to_be_visible()
    expect(page.locator(".object-tools a.historylink")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "admin-job-buttons.png"))
    page.click("#complete-button")
    expect(page.locator("ul.messagelist")).to_contain_text(f"Job {done.number} completed.")

    # cancel the job still pending, with a reason
    left = Job.objects.get(life_cycle_state=LifeCycleState.PENDING)
    page.goto(f"{live_server.url}/admin/jobs/job/{left.pk}/change/")
    page.select_option("#cancel-form select[name=cancellation_reason]", label="No access")
    page.click("#cancel-button")
    expect(page.locator("ul.messagelist")).to_contain_text(f"Job {left.number} cancelled.")
    page.screenshot(path=str(ARTIFACTS / "admin-job-cancelled.png"), full_page=True)
    assert Job.objects.get(pk=done.pk).life_cycle_state == LifeCycleState.COMPLETED
    cancelled = Job.objects.get(pk=left.pk)
    assert (cancelled.life_cycle_state, cancelled.cancellation_reason.name) == (
        LifeCycleState.CANCELLED,
        "No access",
    )
    # This body ran beside Playwright's event loop, where Django keeps a connection apart from
    # the one teardown closes; left open, PostgreSQL could not drop the test database.
    connections.close_all()


def test_a_dispatcher_follows_a_background_run_and_stops_it(live_server, browser_page, settings):
    settings.JOBS_BULK_INLINE_LIMIT = 20
    settings.JOBS_BULK_BATCH_SIZE = 10
    UserFactory(
        username="dispatcher",
        password="dispatcher-pw",
        is_staff=True,
        permissions=["view_job", "view_all_jobs", "start_progress_job"],
    )
    JobFactory.create_batch(6, type=JobTypeFactory(name="Site survey", without_default=True))
    JobFactory.create_batch(114, type=JobTypeFactory(name="Repair"))
    page = browser_page
    log_in(page, live_server.url)

    # Every pending job, across pages: more than the limit, so it goes to the background.
    page.click("#changelist-filter >> text=Pending")
    page.check("#action-toggle")
    page.click("text=Select all 120")
    page.select_option("select[name=action]", "start_progress_action")
    page.click("button[name=index]")
    expect(page.locator("#in-background")).to_be_visible()
    page.click("input[name=confirm]")
    expect(page.locator("ul.messagelist")).to_contain_text("started in the background")
    page.click("ul.messagelist >> text=Follow run")
    expect(page.locator("#run-state")).to_have_text("Queued")

    # A worker plans it and gets two batches in, then this test holds it there.
    run = TransitionRun.objects.get()
    runs.plan(run.pk)
    batches = []

    def two_batches() -> None:
        batches.append(1)
        if len(batches) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.work(run.pk, lessee="worker", on_batch=two_batches)
    page.reload()
    expect(page.locator("#run-state")).to_have_text("Running")
    expect(page.locator("#run-counts")).to_contain_text("14 started, 6 skipped")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-transition-run.png"), full_page=True)

    page.click("#stop-run")
    expect(page.locator("ul.messagelist")).to_contain_text("stops after the batch in hand")
    TransitionRunChunk.objects.filter(run=run).update(leased_until=None, lessee="")
    runs.work(run.pk, lessee="worker")
    # The page reloads by itself until the run has ended.
    expect(page.locator("#run-state")).to_have_text("Stopped", timeout=10_000)
    expect(page.locator("#stop-run")).to_have_count(0)
    run.refresh_from_db()
    assert (run.state, run.moved, run.skipped_count) == (RunState.STOPPED, 14, 6)
    expect(page.locator(".field-stopped_by")).to_contain_text("dispatcher")

    # From the run to the jobs it moved: the transition log, each row naming the run.
    page.click("text=See the 14 jobs it moved")
    expect(page.locator("#result_list tbody tr")).to_have_count(14)
    expect(page.locator("#result_list tbody td.field-run_link")).to_have_text(
        [f"Run {run.pk}"] * 14
    )
    page.locator("#result_list tbody td.field-run_link a").first.click()
    expect(page.locator("#run-state")).to_have_text("Stopped")
    connections.close_all()


@pytest.mark.parametrize("width", [1024, 1280])
def test_the_job_list_shows_every_column_at_common_widths(live_server, browser_page, width):
    UserFactory(
        username="dispatcher",
        password="dispatcher-pw",
        is_staff=True,
        permissions=["view_job", "view_all_jobs"],
    )
    job_type = JobTypeFactory(name="Activation visit with a long name")
    JobFactory.create_batch(
        5, type=job_type, description="Activation visit at 237 Hill Avenue, second floor, rear"
    )
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url)
    expect(page.locator("#result_list tbody tr")).to_have_count(5)
    table, room = page.evaluate(
        "() => { const t = document.querySelector('#result_list');"
        " return [t.scrollWidth, t.parentElement.clientWidth]; }"
    )
    assert table <= room, "the job list is cut off"
    expect(page.locator("#result_list thead th.column-updated")).to_be_visible()
    connections.close_all()
