"""The benchmarks `make bench` runs still run: each at a tiny size on a throwaway SQLite
database (their figures are not checked here: benchmarks print them, tests do not time)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICK = {
    "api.py": ["--requests", "40", "--rounds", "2"],
    "intake.py": ["--requests", "40", "--rounds", "2"],
    "update.py": ["--requests", "40", "--rounds", "2"],
    "visibility.py": ["--per-unit", "200", "--requests", "40", "--rounds", "2"],
}


@pytest.mark.parametrize("script", sorted(QUICK))
def test_the_benchmark_runs_to_its_figures(script):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *QUICK[script]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert " vs raw" in done.stdout or "superuser" in done.stdout, done.stdout[-2000:]
