"""Settings read from the environment: a value that is not understood stops every process at
start, naming the variable; the time zone is the operator's to choose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import env_flag

ROOT = Path(__file__).resolve().parent.parent


def start(command: list[str], **environment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **environment}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


MANAGE = [sys.executable, "manage.py"]
# What the server (gunicorn's application) and the workers (Celery's app, with Django's setup)
# load first.
SERVER = [sys.executable, "-c", "import config.wsgi"]
WORKER = [
    sys.executable,
    "-c",
    "from config.celery import app; app.loader.import_default_modules()",
]


@pytest.mark.parametrize(
    "command", [[*MANAGE, "check"], SERVER, WORKER], ids=["check", "server", "worker"]
)
def test_a_yes_or_no_setting_that_is_neither_stops_the_start_naming_it(command):
    started = start(command, SESSION_COOKIE_SECURE="ture")
    assert started.returncode != 0
    assert "SESSION_COOKIE_SECURE='ture' is not a yes or no" in started.stderr


@pytest.mark.parametrize("value", ["1", "true", "YES", "On", "0", "false", "No", "OFF", " "])
def test_every_common_spelling_of_yes_and_no_is_understood(monkeypatch, value):
    monkeypatch.setenv("SOME_FLAG", value)
    expected = value.lower() in {"1", "true", "yes", "on"}
    assert env_flag("SOME_FLAG", default=False) is expected
    assert env_flag("SOME_FLAG", default=True) is (expected or value == " ")


def test_a_number_setting_that_is_not_one_stops_the_start_naming_it():
    started = start([*MANAGE, "check"], JOBS_BULK_BATCH_SIZE="5oo")
    assert started.returncode != 0
    assert "JOBS_BULK_BATCH_SIZE='5oo' is not a whole number" in started.stderr


def test_the_time_zone_comes_from_the_environment():
    command = [sys.executable, "-c", "import config.settings as s; print(s.TIME_ZONE)"]
    assert start(command).stdout.strip() == "UTC"
    assert start(command, TIME_ZONE="Europe/Nicosia").stdout.strip() == "Europe/Nicosia"
