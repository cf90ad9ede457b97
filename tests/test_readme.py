"""The README's examples print what the README says they print.

The walkthrough's shell block and the commands' block are run top to bottom, as a newcomer would
after `make run`, against a fresh demo database served by a real server; each command's output is
compared with the `# ` lines that follow it in the README (times and tokens aside).
"""

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from jobs.transitions import TRANSITIONS
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTIONS = ("### A walkthrough against `make run`", "## The commands")
TIMES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")

pytestmark = pytest.mark.skipif(not shutil.which("curl"), reason="the walkthrough uses curl")


def shell_block(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading) :]
    return section[section.index("```sh\n") + 6 : section.index("\n```", section.index("```sh"))]


def examples(block: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) in order. A paragraph is description comments, then a
    command (its continuation lines included), then the `# ` lines of what it prints."""
    steps = []
    for paragraph in block.split("\n\n"):
        lines = paragraph.splitlines()
        while lines and lines[0].startswith("#"):
            lines.pop(0)  # what the step is about
        command: list[str] = []
        while lines and not lines[0].startswith("#"):
            command.append(lines.pop(0))
        expected = [line[2:] if line.startswith("# ") else line[1:] for line in lines]
        if command:
            steps.append(("\n".join(command), expected))
    return steps


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory):
    """A migrated demo database and a server on it, as `make run` leaves them."""
    database = tmp_path_factory.mktemp("demo") / "db.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DEBUG": "1"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--no-input", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run([*manage, "load_demo_data"], env=env, check=True, cwd=ROOT, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield env, port
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_block(heading: str, env: dict, port: int) -> list[tuple[str, list[str], list[str]]]:
    """Run a block's commands in one shell, in order; return (command, expected, printed)."""
    steps = examples(shell_block(heading))
    marker = "@@step@@"
    script = "\n".join(f"{command}\necho; echo {marker}" for command, _ in steps)
    script = script.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    script = script.replace(".venv/bin/python", sys.executable)
    finished = subprocess.run(
        ["bash", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    printed = finished.stdout.split(marker + "\n")
    return [
        (command, expected, [line for line in output.splitlines() if line])
        for (command, expected), output in zip(steps, printed, strict=False)
    ]


def masked(lines: list[str]) -> list[str]:
    return [TIMES.sub("<time>", line) for line in lines]


def test_the_walkthrough_and_the_commands_print_what_the_readme_shows(fresh_demo):
    env, port = fresh_demo
    results = [result for heading in SECTIONS for result in run_block(heading, env, port)]
    assert len(results) >= 12
    for command, expected, printed in results:
        assert masked(printed) == masked(expected), command


def test_the_receiver_example_verifies_signatures_and_drops_repeats(tmp_path):
    import base64
    import http.client
    import json as json_module
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    text = README.read_text()
    section = text[text.index("## Events and webhooks") :]
    code = section[
        section.index("```python\n") + 10 : section.index("\n```", section.index("```python"))
    ]
    (tmp_path / "receiver.py").write_text(code)
    secret = "whsec_" + base64.b64encode(b"r" * 32).decode()
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, str(tmp_path / "receiver.py")],
        env={**os.environ, "WEBHOOK_SECRET": secret, "PORT": str(port)},
        stdout=subprocess.PIPE,
        text=True,
    )
    job_event = json_module.dumps(
        {"type": "job.started", "timestamp": "t", "data": {"job": {"number": "JB00001"}}}
    )
    test_event = json_module.dumps(
        {"type": "webhook.test", "timestamp": "t", "data": {"message": "A test event"}}
    )

    def post(signed_with: str, body: str = job_event, event_id: str = "evt_1") -> int:
        now = datetime.now(UTC)
        headers = {
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(signed_with).sign(event_id, now, body),
            "content-type": "application/json",
        }
        for _ in range(50):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("POST", "/", body=body, headers=headers)
                return connection.getresponse().status
            except ConnectionRefusedError:
                time.sleep(0.1)
        raise AssertionError("the receiver did not start")

    try:
        assert post(secret) == 204
        assert post("whsec_" + base64.b64encode(b"w" * 32).decode()) == 400
        assert post(secret) == 204  # the same webhook-id again: answered, not handled twice
        # The admin's test event has no job; every type the service sends is handled.
        assert post(secret, test_event, "evt_test") == 204
        # A job event the receiver cannot handle is not marked seen: its retry is handled.
        broken = json_module.dumps({"type": "job.started", "timestamp": "t", "data": {}})
        assert post(secret, broken, "evt_2") == 500
        assert post(secret, job_event.replace("JB00001", "JB00002"), "evt_2") == 204
    finally:
        receiver.terminate()
        printed, _ = receiver.communicate(timeout=10)
    assert printed.splitlines() == ["job.started JB00001", "webhook.test", "job.started JB00002"]


def test_the_api_reference_tables_every_declared_transition():
    reference = (ROOT / "docs" / "api.md").read_text()
    table = reference[reference.index("## Transitions") : reference.index("## Endpoints")]
    for name, declared in TRANSITIONS.items():
        assert f"| `{name}`" in table, name
        assert declared.permission in table, name


def test_the_first_steps_say_what_make_graph_needs():
    start_here = README.read_text().split("## Start here", 1)[1].split("\n## ", 1)[0]
    assert "make graph" in start_here
    assert "apt-get install graphviz" in start_here
