"""The outbox and the feed: one event per job per transition, written in the transition's own
transaction, and GET events handing each out once, in order, by a cursor the client keeps."""

import threading
import time

import pytest
from django.db import DatabaseError, connection, transaction

from jobs.exceptions import JobStateConflict
from jobs.models import Channel, Event, Job, LifeCycleState
from jobs.services import job_bulk_transition, job_transition
from tests.factories import JobCancellationReasonFactory, JobFactory, UserFactory
from tests.helpers import ROOT, code_of, every_transition, failing_log_insert, requires_postgresql

EVENTS = ROOT + "events"


def feed(client, **params):
    response = client.get(EVENTS, params)
    assert response.status_code == 200, response.content
    body = response.json()
    return body["data"], body["paging"]


# --- the outbox ------------------------------------------------------------------------------


@pytest.mark.django_db
@every_transition
def test_each_transition_writes_one_event_naming_what_happened(dispatcher, declared):
    job = JobFactory(life_cycle_state=declared.sources[0])
    from_status = job.status
    extra = {p.name: JobCancellationReasonFactory() for p in declared.parameters}

    job_transition(transition=declared, job=job, user=dispatcher, channel=Channel.API, **extra)

    (event,) = Event.objects.all()
    job.refresh_from_db()
    assert event.public_id.startswith("evt_")
    assert event.type == declared.event
    assert event.timestamp == job.updated_date
    assert event.data == {
        "job": {
            "id": job.pk,
            "number": job.number,
            "type": {"id": job.type_id, "alternative_code": job.type.alternative_code},
        },
        "from_state": declared.sources[0],
        "to_state": declared.target,
        "from_status": {
            "id": from_status.pk,
            "name": from_status.name,
            "alternative_code": from_status.alternative_code,
        },
        "to_status": {
            "id": job.status.pk,
            "name": job.status.name,
            "alternative_code": job.status.alternative_code,
        },
        "user": {"id": dispatcher.pk, "username": "dispatcher"},
        "channel": "api",
        **{
            name: {
                "id": reason.pk,
                "name": reason.name,
                "alternative_code": reason.alternative_code,
            }
            for name, reason in extra.items()
        },
    }


@pytest.mark.django_db
def test_a_bulk_run_writes_one_event_per_job_moved_and_none_for_the_skipped(dispatcher):
    moved = JobFactory.create_batch(5)
    skipped = JobFactory(life_cycle_state=LifeCycleState.COMPLETED)
    job_bulk_transition(
        transition="start_progress",
        jobs=[j.number for j in [*moved, skipped]],
        user=dispatcher,
        channel=Channel.COMMAND,
        batch_size=2,
    )
    assert sorted(e.data["job"]["id"] for e in Event.objects.all()) == sorted(j.pk for j in moved)
    assert len({e.public_id for e in Event.objects.all()}) == 5


@pytest.mark.django_db
def test_a_batch_that_fails_announces_nothing(dispatcher):
    jobs = JobFactory.create_batch(4)
    with failing_log_insert(on_call=2), pytest.raises(DatabaseError):
        job_bulk_transition(
            transition="start_progress",
            jobs=[j.number for j in jobs],
            user=dispatcher,
            channel=Channel.COMMAND,
            batch_size=2,
        )
    started = set(Job.objects.filter(life_cycle_state="IN_PROGRESS").values_list("pk", flat=True))
    assert {e.data["job"]["id"] for e in Event.objects.all()} == started
    assert len(started) == 2


@pytest.mark.django_db
def test_a_refused_transition_announces_nothing(dispatcher):
    job = JobFactory(life_cycle_state=LifeCycleState.COMPLETED)
    with pytest.raises(JobStateConflict, match="state=COMPLETED"):
        job_transition(transition="start_progress", job=job, user=dispatcher, channel="api")
    assert not Event.objects.exists()


# --- the feed --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_client_that_keeps_the_cursor_sees_every_event_once_in_order(as_dispatcher, dispatcher):
    jobs = JobFactory.create_batch(5)
    for job in jobs:
        job_transition(transition="start_progress", job=job, user=dispatcher, channel="api")

    seen, after = [], None
    for _ in range(4):
        page, paging = feed(
            as_dispatcher, number_of_results=2, **({"after": after} if after else {})
        )
        seen.extend(page)
        after = paging["after"]
        assert paging["count"] == len(page)
    assert [e["data"]["job"]["number"] for e in seen] == [j.number for j in jobs]
    assert {e["type"] for e in seen} == {"job.started"}
    assert seen[0]["timestamp"].endswith("Z")

    # nothing new: an empty page keeps the cursor; something new comes after it
    assert feed(as_dispatcher, after=after) == ([], {"after": after, "count": 0})
    job_transition(transition="complete", job=jobs[0], user=dispatcher, channel="api")
    page, _ = feed(as_dispatcher, after=after)
    assert [(e["type"], e["data"]["job"]["id"]) for e in page] == [("job.completed", jobs[0].pk)]


@pytest.mark.django_db
def test_the_feed_filters_by_type(as_dispatcher, dispatcher):
    started, cancelled = JobFactory(), JobFactory()
    job_transition(transition="start_progress", job=started, user=dispatcher, channel="api")
    job_transition(transition="cancel", job=cancelled, user=dispatcher, channel="api")
    page, _ = feed(as_dispatcher, types="job.cancelled,job.completed")
    assert [e["data"]["job"]["id"] for e in page] == [cancelled.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"types": "job.exploded"}, (400, "INVALID_PARAMETER")),
        ({"types": ""}, (400, "INVALID_PARAMETER")),
        ({"after": "yesterday"}, (400, "INVALID_PARAMETER")),
        ({"after": "1_99999999999999999999"}, (400, "INVALID_PARAMETER")),
        ({"after": "0_987654"}, (400, "EVENT_NOT_FOUND")),  # from the future
        ({"after": "0_9300000000000000000"}, (400, "EVENT_NOT_FOUND")),  # past the id column
        ({"number_of_results": "0"}, (400, "INVALID_PARAMETER")),
        ({"number_of_results": "501"}, (400, "INVALID_PARAMETER")),
    ],
)
def test_the_feed_answers_bad_input_with_the_contracts_codes(as_dispatcher, params, expected):
    assert code_of(as_dispatcher.get(EVENTS, params)) == expected


@pytest.mark.django_db
def test_the_feed_needs_a_token_and_the_view_permission(api, viewer, token_for):
    assert code_of(api.get(EVENTS)) == (401, "AUTHENTICATION_FAILED")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(UserFactory())}")
    assert code_of(api.get(EVENTS)) == (403, "PERMISSION_DENIED")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}")
    assert code_of(api.get(EVENTS)) == (200, "OK")


# --- out-of-order commits, on PostgreSQL ----------------------------------------------------


def _read_all(client, after, seen):
    while True:
        page, paging = feed(client, number_of_results=50, **({"after": after} if after else {}))
        seen.extend(e["id"] for e in page)
        after = paging["after"]
        if not page:
            return after


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_late_is_not_jumped_by_a_reader(api, token_for):
    dispatcher = UserFactory(
        username="dispatcher", permissions=["view_job", "view_all_jobs", "start_progress_job"]
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(dispatcher)}")
    early, late = JobFactory(), JobFactory()
    holding, release = threading.Event(), threading.Event()

    def slow_writer():
        # Its transaction starts first (the lower txid) and commits last.
        with transaction.atomic():
            job_transition(transition="start_progress", job=early, user=dispatcher, channel="api")
            holding.set()
            release.wait(10)
        connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    holding.wait(10)
    job_transition(transition="start_progress", job=late, user=dispatcher, channel="api")

    seen: list[str] = []
    after = _read_all(api, None, seen)
    assert seen == []  # the late event waits: handing it out now would skip the early one
    release.set()
    writer.join(10)
    _read_all(api, after, seen)
    numbers = dict(Event.objects.values_list("public_id", "data__job__number"))
    assert [numbers[e] for e in seen] == [early.number, late.number]


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_reader_paging_while_writers_commit_sees_each_event_exactly_once(api, token_for):
    dispatcher = UserFactory(
        username="dispatcher", permissions=["view_job", "view_all_jobs", "start_progress_job"]
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(dispatcher)}")
    jobs = JobFactory.create_batch(120)
    done = threading.Event()

    def writer(mine):
        for i, job in enumerate(mine):
            with transaction.atomic():
                job_transition(transition="start_progress", job=job, user=dispatcher, channel="api")
                time.sleep(0.001 * (i % 7))  # commits land out of txid order
        connection.close()

    writers = [threading.Thread(target=writer, args=(jobs[k::4],)) for k in range(4)]
    for thread in writers:
        thread.start()
    seen: list[str] = []
    after = None
    while any(thread.is_alive() for thread in writers):
        after = _read_all(api, after, seen)
    done.set()
    _read_all(api, after, seen)

    assert len(seen) == len(set(seen)), "an event was handed out twice"
    assert set(seen) == set(Event.objects.values_list("public_id", flat=True)), (
        "an event was missed"
    )
    assert len(seen) == 120
