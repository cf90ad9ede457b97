"""The type's allowed statuses become a model of their own, AllowedStatus, on the same table and
columns (nothing moves), and gain a position: the type's status sequence."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0009_intake"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AllowedStatus",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "job_type",
                            models.ForeignKey(
                                db_column="jobtype_id",
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="sequence",
                                to="jobs.jobtype",
                            ),
                        ),
                        (
                            "status",
                            models.ForeignKey(
                                db_column="jobstatus_id",
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="jobs.jobstatus",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "jobs_jobtype_allowed_statuses",
                        "ordering": ["position", "id"],
                        "verbose_name": "allowed status",
                        "unique_together": {("job_type", "status")},
                    },
                ),
                migrations.AlterField(
                    model_name="jobtype",
                    name="allowed_statuses",
                    field=models.ManyToManyField(
                        related_name="allowed_for_types",
                        through="jobs.AllowedStatus",
                        to="jobs.jobstatus",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="allowedstatus",
            name="position",
            field=models.PositiveIntegerField(
                default=0, help_text="the status's place in the type's sequence, within its state"
            ),
        ),
    ]
