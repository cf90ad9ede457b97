"""Who may do what: django-fsm does not check a transition's `permission=` when it is called, so
every door's request asks here, once, before anything is locked or read for it."""

from __future__ import annotations

from typing import Any

from jobs.exceptions import PermissionDenied
from jobs.transitions import JobTransition

TransitionRef = JobTransition | str


def ensure_permitted(user: Any, declared: JobTransition) -> None:
    """Refuse a user who may not run the transition: django-fsm does not check `permission=` on
    a call, so the service asks here, once, for every door."""
    if user is None or not user.is_active or not user.has_perm(declared.permission):
        raise PermissionDenied(transition=declared.name, permission=declared.permission)


def ensure_may_view(user: Any) -> None:
    """Refuse a user who may not look at jobs (and so at runs, events and look-ups)."""
    if user is None or not user.has_perm("jobs.view_job"):
        raise PermissionDenied(permission="jobs.view_job")
