"""Jobs from outside: POST jobs (ours) and POST jobs/generic_purpose/create (CRM.COM's), their
defaults, every refusal, and the Idempotency-Key."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import (
    Event,
    ExpirationSetting,
    FulfillmentScope,
    IdempotencyKey,
    Job,
    LifeCycleState,
)
from jobs.services import job_transition
from tests.factories import GroupFactory, JobFactory, JobTypeFactory, UserFactory, status_of
from tests.helpers import JOBS, code_of, count_queries

pytestmark = pytest.mark.django_db
GENERIC = JOBS + "/generic_purpose/create"
CREATING = ["view_job", "add_job"]


@pytest.fixture
def north(db):
    return GroupFactory(name="North field team")


@pytest.fixture
def repair(db):
    return JobTypeFactory(name="Repair", alternative_code="REPAIR")


@pytest.fixture
def creator(north):
    return UserFactory(username="shop", permissions=CREATING, groups=[north])


@pytest.fixture
def as_creator(api, creator, token_for):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(creator)}")
    return api


def create(client, url=JOBS, key=None, **body):
    body.setdefault("type_identifier", {"alternative_code": "REPAIR"})
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(url, body, format="json", **headers)


def test_a_created_job_takes_its_types_default_and_its_creators_unit(as_creator, creator, repair):
    response = create(as_creator, description="Replace the router", notes="gate code 1234")

    assert response.status_code == 201
    data = response.json()["data"]
    job = Job.objects.get()
    assert data["number"] == job.number
    assert (data["life_cycle_state"], data["status"]["id"]) == (
        "DRAFT",
        repair.default_create_status_id,
    )
    assert data["owned_by_group"]["name"] == "North field team"
    assert (data["description"], data["notes"]) == ("Replace the router", "gate code 1234")
    assert data["log_information"]["created_by_user"] == creator.username
    assert job.created_by_user == creator


def test_crm_coms_method_answers_200_and_takes_only_generic_purpose_types(as_creator, repair):
    assert create(as_creator, GENERIC).status_code == 200
    JobTypeFactory(alternative_code="SWAP", fulfillment_scope=FulfillmentScope.SWAP_INSTALLED_ITEMS)

    refused = create(as_creator, GENERIC, type_identifier={"alternative_code": "SWAP"})

    assert code_of(refused) == (400, "INVALID_PARAMETER")
    assert "SWAP_INSTALLED_ITEMS" in refused.json()["status"]["message"]
    assert create(as_creator, type_identifier={"alternative_code": "SWAP"}).status_code == 201
    assert Job.objects.count() == 2


def test_a_create_writes_the_event_job_created(as_creator, creator, repair):
    job_id = create(as_creator).json()["data"]["id"]

    event = Event.objects.get()
    assert (event.type, event.job_id) == ("job.created", job_id)
    assert event.data["to_state"] == "DRAFT"
    assert event.data["user"] == {"id": creator.pk, "username": "shop"}
    assert event.data["owned_by_group"]["name"] == "North field team"


def test_a_status_may_be_asked_for_in_draft_or_pending_of_the_type(as_creator, repair):
    pending = status_of(repair, LifeCycleState.PENDING)
    started = status_of(repair, LifeCycleState.IN_PROGRESS)
    other = status_of(JobTypeFactory(), LifeCycleState.PENDING)

    made = create(as_creator, status_identifier={"id": pending.pk}).json()["data"]
    assert made["life_cycle_state"] == "PENDING"
    assert code_of(create(as_creator, status_identifier={"id": started.pk})) == (
        400,
        "STATUS_NOT_ALLOWED",
    )
    assert code_of(create(as_creator, status_identifier={"id": other.pk})) == (
        400,
        "STATUS_NOT_ALLOWED",
    )
    assert code_of(create(as_creator, status_identifier={"name": "nope"})) == (
        400,
        "STATUS_NOT_FOUND",
    )
    assert Job.objects.count() == 1


def test_a_type_without_a_default_on_create_needs_a_status(as_creator):
    JobTypeFactory(alternative_code="SURVEY", without_default=True)
    response = create(as_creator, type_identifier={"alternative_code": "SURVEY"})
    assert code_of(response) == (409, "NO_DEFAULT_STATUS")
    assert "default status on create" in response.json()["status"]["message"]


def test_the_expiration_date_follows_the_type(as_creator):
    JobTypeFactory(
        alternative_code="X",
        expiration_settings=ExpirationSetting.X_DAYS_AFTER_JOB_CREATION,
        expiration_days=14,
    )
    on_pending = JobTypeFactory(
        alternative_code="P",
        expiration_settings=ExpirationSetting.ON_PENDING_STATE,
        expiration_days=2,
    )
    before = timezone.now()

    create(as_creator, type_identifier={"alternative_code": "X"})
    create(
        as_creator,
        type_identifier={"alternative_code": "P"},
        status_identifier={"id": status_of(on_pending, "PENDING").pk},
    )
    create(as_creator, type_identifier={"alternative_code": "P"})  # a draft: not yet

    x, pending, draft = Job.objects.order_by("pk")
    assert timedelta(days=14) <= x.expiration_date - before < timedelta(days=14, minutes=1)
    assert timedelta(days=2) <= pending.expiration_date - before < timedelta(days=2, minutes=1)
    assert draft.expiration_date is None


def test_an_assignment_names_a_user_or_a_unit_or_both(as_creator, repair, north):
    technician = UserFactory(username="tech")
    body = {"user_identifier": {"username": "tech"}, "unit_identifier": {"id": north.pk}}

    data = create(as_creator, assigned_to=body).json()["data"]

    assert data["assigned_to"]["user"]["username"] == "tech"
    assert data["assigned_to"]["unit"]["name"] == "North field team"
    assert Job.objects.get().assigned_to.user == technician
    nobody = create(as_creator, assigned_to={"user_identifier": {"username": "ghost"}})
    assert code_of(nobody) == (400, "USER_NOT_FOUND")
    no_unit = create(as_creator, assigned_to={"unit_identifier": {"name": "Nowhere"}})
    assert code_of(no_unit) == (400, "GROUP_NOT_FOUND")
    assert Job.objects.count() == 1


def test_the_owner_is_one_of_the_creators_groups_unless_they_see_every_job(
    api, token_for, repair, north
):
    south = GroupFactory(name="South field team")
    both = UserFactory(permissions=CREATING, groups=[north, south])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(both)}")

    assert code_of(create(api)) == (400, "MANDATORY_PARAMETER_MISSING")
    chosen = create(api, owned_by_group_identifier={"name": "South field team"})
    assert chosen.json()["data"]["owned_by_group"]["name"] == "South field team"
    elsewhere = GroupFactory(name="Head office")
    assert code_of(create(api, owned_by_group_identifier={"id": elsewhere.pk})) == (
        403,
        "PERMISSION_DENIED",
    )

    head = UserFactory(permissions=[*CREATING, "view_all_jobs"], groups=[north, south])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(head)}")
    assert create(api).json()["data"]["owned_by_group"] is None
    given = create(api, owned_by_group_identifier={"id": elsewhere.pk}).json()["data"]
    assert given["owned_by_group"]["name"] == "Head office"


def test_an_external_reference_is_held_by_one_job_and_named_only_to_who_sees_it(
    as_creator, api, token_for, repair
):
    made = create(as_creator, external_reference="SHOP-1042").json()["data"]
    assert made["external_reference"] == "SHOP-1042"

    again = create(as_creator, external_reference="SHOP-1042")
    assert code_of(again) == (409, "DUPLICATE_EXTERNAL_REFERENCE")
    assert made["number"] in again.json()["status"]["message"]

    stranger = UserFactory(permissions=CREATING)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(stranger)}")
    unseen = create(api, external_reference="SHOP-1042")
    assert code_of(unseen) == (409, "DUPLICATE_EXTERNAL_REFERENCE")
    assert made["number"] not in unseen.json()["status"]["message"]
    assert Job.objects.count() == 1


def test_creating_needs_the_add_permission(api, token_for, repair, unchanged):
    unchanged()
    viewer = UserFactory(permissions=["view_job"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(viewer)}")
    response = create(api)
    assert code_of(response) == (403, "PERMISSION_DENIED")
    assert response.json()["status"]["message"] == "You may not create jobs."


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"colour": "red"}, (400, "INVALID_PARAMETER")),
        ({"description": 5}, (400, "INVALID_PARAMETER")),
        ({"scheduled_date": "next tuesday"}, (400, "INVALID_PARAMETER")),
        ({"external_reference": "x" * 101}, (400, "INVALID_PARAMETER")),
        ({"external_reference": ""}, (400, "MANDATORY_PARAMETER_MISSING")),
        ({"type_identifier": {"alternative_code": "NOPE"}}, (400, "JOB_TYPE_NOT_FOUND")),
        ({"type_identifier": None}, (400, "INVALID_IDENTIFIER")),
        ({"assigned_to": {"user_identifier": {"email": "a@b"}}}, (400, "INVALID_IDENTIFIER")),
        ({"assigned_to": {"team": 1}}, (400, "INVALID_PARAMETER")),
        ({"fields_set": "colour"}, (400, "INVALID_PARAMETER")),
    ],
)
def test_odd_input_answers_a_clear_error_and_creates_nothing(as_creator, repair, body, expected):
    assert code_of(create(as_creator, **body)) == expected
    assert not Job.objects.exists()


def test_a_missing_type_is_mandatory_parameter_missing(as_creator, repair):
    response = as_creator.post(JOBS, {"description": "no type"}, format="json")
    assert code_of(response) == (400, "MANDATORY_PARAMETER_MISSING")


def test_fields_set_shapes_the_answer(as_creator, repair):
    data = create(as_creator, fields_set="number,life_cycle_state,owned_by_group.name").json()
    assert set(data["data"]) == {"number", "life_cycle_state", "owned_by_group"}


@pytest.mark.parametrize("with_assignment", [False, True])
def test_a_create_takes_a_fixed_number_of_queries(as_creator, repair, north, with_assignment):
    JobFactory.create_batch(3)
    body = {"assigned_to": {"unit_identifier": {"id": north.pk}}} if with_assignment else {}
    with count_queries() as queries:
        assert create(as_creator, **body).status_code == 201
    # the user (with permissions and groups), the type (with its default status), the owner, the
    # job (its INSERT, then its number), the event; and the unit and the assignment's row
    assert len(queries) == (8 if with_assignment else 6), queries.sql


# --- Idempotency-Key ------------------------------------------------------------------------------


def test_a_replay_answers_the_first_answer_again_and_creates_nothing(as_creator, repair):
    first = create(as_creator, key="order-1042", description="once")
    again = create(as_creator, key="order-1042", description="once")

    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1
    assert Event.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(as_creator, repair):
    create(as_creator, key="order-1042", description="once")
    response = create(as_creator, key="order-1042", description="twice")
    assert code_of(response) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert Job.objects.count() == 1


def test_a_key_whose_request_is_still_running_answers_in_use(as_creator, creator, repair):
    create(as_creator, key="order-1042")  # its fingerprint, then make it look unfinished
    IdempotencyKey.objects.update(status_code=None, answer="")
    response = create(as_creator, key="order-1042")
    assert code_of(response) == (409, "IDEMPOTENCY_KEY_IN_USE")
    assert Job.objects.count() == 1


def test_a_claim_whose_request_died_is_taken_over(as_creator, repair):
    create(as_creator, key="order-1042")
    Job.objects.all().delete()  # as if it had rolled back with its request
    IdempotencyKey.objects.update(
        status_code=None, answer="", claimed_at=timezone.now() - timedelta(minutes=5)
    )
    assert create(as_creator, key="order-1042").status_code == 201
    assert Job.objects.count() == 1


def test_a_key_is_new_again_after_24_hours(as_creator, repair):
    create(as_creator, key="order-1042")
    IdempotencyKey.objects.update(claimed_at=timezone.now() - timedelta(hours=25))
    assert "Idempotent-Replayed" not in create(as_creator, key="order-1042")
    assert Job.objects.count() == 2


def test_a_refusal_is_answered_again_too(as_creator, repair):
    first = create(as_creator, key="k", type_identifier={"alternative_code": "NOPE"})
    JobTypeFactory(alternative_code="NOPE")
    again = create(as_creator, key="k", type_identifier={"alternative_code": "NOPE"})
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert not Job.objects.exists()


def test_keys_are_each_users_own(as_creator, api, token_for, repair):
    create(as_creator, key="order-1042")
    other = UserFactory(permissions=[*CREATING, "view_all_jobs"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(other)}")
    assert create(api, key="order-1042").status_code == 201
    assert Job.objects.count() == 2


def test_a_key_that_is_not_visible_ascii_is_refused(as_creator, repair):
    assert code_of(create(as_creator, key="x" * 256)) == (400, "INVALID_PARAMETER")
    assert not Job.objects.exists()


def test_a_draft_of_a_type_that_expires_on_pending_expires_from_its_submit(dispatcher):
    on_pending = JobTypeFactory(
        expiration_settings=ExpirationSetting.ON_PENDING_STATE, expiration_days=2
    )
    draft = JobFactory(type=on_pending, life_cycle_state=LifeCycleState.DRAFT)
    before = timezone.now()

    job = job_transition(transition="submit", job=draft, user=dispatcher, channel="api")

    assert timedelta(days=2) <= job.expiration_date - before < timedelta(days=2, minutes=1)
    assert Job.objects.get(pk=draft.pk).expiration_date == job.expiration_date
