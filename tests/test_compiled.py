"""jobs.compiled: a queryset compiled once gives, for any values, what the queryset would."""

import re

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Concat

from jobs.compiled import CompiledQuery, NotCompilable
from jobs.models import Job
from tests.factories import AssignmentFactory, JobFactory, UserFactory
from tests.helpers import count_queries, requires_postgresql

pytestmark = pytest.mark.django_db

MARKER = "\x00number"


def jobs_numbered(number):
    return (
        Job.objects.filter(number=number)
        .select_related("type", "assigned_to__user")
        # the life cycle state too: the model reads it when it is made (django-fsm)
        .only("id", "number", "life_cycle_state", "type__name", "assigned_to__user__username")
        .annotate(label=Concat(F("number"), Value("/"), F("type__name")))
    )


def test_each_run_finds_the_rows_of_its_own_values_with_relations_and_annotations():
    first = JobFactory()
    second = JobFactory()
    AssignmentFactory(job=second, user=UserFactory(username="fitter"))
    compiled = CompiledQuery(jobs_numbered(MARKER), [MARKER])

    with count_queries() as queries:
        (found_first,) = compiled.objects(first.number)
        (found_second,) = compiled.objects(second.number)
        nothing = compiled.objects("no such number")

    assert len(queries) == 3  # one each, nothing read lazily
    for found, job in ((found_first, first), (found_second, second)):
        (expected,) = jobs_numbered(job.number)
        assert (found.pk, found.number, found.type.name) == (job.pk, job.number, job.type.name)
        assert found.label == expected.label
        assert found.get_deferred_fields() == expected.get_deferred_fields()
    assert found_second.assigned_to.user.username == "fitter"
    assert nothing == []


def test_a_value_the_lookup_transforms_cannot_be_compiled():
    with pytest.raises(NotCompilable):
        CompiledQuery(Job.objects.filter(number__contains=MARKER), [MARKER])


@requires_postgresql
@pytest.mark.skipif(
    settings.DATABASE_PREPARED_STATEMENTS == "none", reason="DATABASE_PREPARED_STATEMENTS=none"
)
def test_on_postgresql_a_compiled_query_is_prepared_from_its_second_run():
    job = JobFactory()
    compiled = CompiledQuery(jobs_numbered(MARKER), [MARKER])

    for _ in range(2):
        (found,) = compiled.objects(job.number)

    assert found.pk == job.pk
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    assert any(re.search(r'WHERE "jobs_job"."number" = \$\d+ ', s) for s in prepared), prepared
