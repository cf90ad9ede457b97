# The Celery app is loaded with Django, so tasks are sent through it (jobs.tasks).
from config.celery import app as celery_app

__all__ = ["celery_app"]
