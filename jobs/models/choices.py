"""The words a job's data is made of: its life-cycle states, a type's settings, the doors it
moves through, and the permissions of its transitions."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

SUBMIT_PERMISSION = "jobs.submit_job"
VIEW_ALL_PERMISSION = "jobs.view_all_jobs"
START_PROGRESS_PERMISSION = "jobs.start_progress_job"
COMPLETE_PERMISSION = "jobs.complete_job"
CANCEL_PERMISSION = "jobs.cancel_job"


class LifeCycleState(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    PENDING = "PENDING", "Pending"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    COMPLETED = "COMPLETED", "Completed"
    CANCELLED = "CANCELLED", "Cancelled"


class FulfillmentScope(models.TextChoices):
    GENERIC_PURPOSE = "GENERIC_PURPOSE", "Generic purpose"
    NEW_SUBSCRIPTION = "NEW_SUBSCRIPTION", "New subscription"
    ACTIVATE_SUBSCRIPTION = "ACTIVATE_SUBSCRIPTION", "Activate subscription"
    DEACTIVATE_SUBSCRIPTION = "DEACTIVATE_SUBSCRIPTION", "Deactivate subscription"
    ADD_SERVICES = "ADD_SERVICES", "Add services"
    REMOVE_SERVICES = "REMOVE_SERVICES", "Remove services"
    SWAP_SERVICES = "SWAP_SERVICES", "Swap services"
    ADD_INSTALLED_ITEMS = "ADD_INSTALLED_ITEMS", "Add installed items"
    REMOVE_INSTALLED_ITEMS = "REMOVE_INSTALLED_ITEMS", "Remove installed items"
    SWAP_INSTALLED_ITEMS = "SWAP_INSTALLED_ITEMS", "Swap installed items"
    MOVE_SUBSCRIPTION = "MOVE_SUBSCRIPTION", "Move subscription"
    CANCEL_SUBSCRIPTION = "CANCEL_SUBSCRIPTION", "Cancel subscription"
    SUBSCRIPTION_MAINTAINANCE = "SUBSCRIPTION_MAINTAINANCE", "Subscription maintenance"


class ExpirationSetting(models.TextChoices):
    NONE = "NONE", "Never expires"
    X_DAYS_AFTER_JOB_CREATION = "X_DAYS_AFTER_JOB_CREATION", "X days after job creation"
    ON_PENDING_STATE = "ON_PENDING_STATE", "On pending state"
    ON_START_PROGRESS = "ON_START_PROGRESS", "On start progress"


class RatingState(models.TextChoices):
    PENDING = "PENDING", "Pending"
    COMPLETED = "COMPLETED", "Completed"


class Channel(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Command"


def in_choices(field: str, choices: type[models.TextChoices]) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": choices.values}), name=f"%(class)s_{field}_valid"
    )
