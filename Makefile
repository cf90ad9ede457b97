# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run serve worker demo demo-reset test test-next lint format bench bench-large bench-runs load graph graphviz clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py load_demo_data

# A fresh demo database, the same job for job: the README's walkthrough works again from the top.
demo-reset: install
	rm -f db.sqlite3 db.sqlite3-*
	$(MAKE) demo

# The web server, and beside it the worker that delivers webhooks and its scheduler (Procfile.dev).
run: demo
	mkdir -p .broker
	JOBS_HOST=$(HOST) JOBS_PORT=$(PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
		$(VENV)/bin/honcho -f Procfile.dev start

# A webhook worker against REDIS_URL (and DATABASE_URL): run one on each machine that delivers.
worker: install
	$(VENV)/bin/celery -A config worker --pool threads --concurrency 8 --loglevel INFO

# Like production: migrations, then the Procfile's processes (collectstatic and gunicorn), each
# under honcho, so every step reads the same .env. gunicorn listens on PORT (8000, as `make run`;
# honcho's own default would be 5000), unless .env or the environment sets another. Set DEBUG=0, SECRET_KEY and the rest from .env.example first (see docs/deploy.md).
SERVE_PROCESSES ?= web worker runs beat
serve: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho run python manage.py migrate --no-input
	PORT=$(PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start $(SERVE_PROCESSES)

test: install
	$(PY) -m pytest

# The suite again on Python 3.12 with the newest Django, 6.1 (CI runs both lines).
NEXT_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python) python3.12)
NEXT_VENV ?= .venv-next
test-next:
	test -x $(NEXT_VENV)/bin/python || $(NEXT_PYTHON) -m venv $(NEXT_VENV)
	$(NEXT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NEXT_VENV)/bin/python -m pip install --quiet -e ".[dev]" "Django>=6.1,<7"
	$(NEXT_VENV)/bin/python -c "import django; print('Django', django.get_version())"
	$(NEXT_VENV)/bin/python -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# On SQLite always, and again on the database DATABASE_URL names when it is set.
bench: install
	env -u DATABASE_URL $(PY) benchmarks/bulk_transitions.py
	env -u DATABASE_URL $(PY) benchmarks/api.py
	env -u DATABASE_URL $(PY) benchmarks/visibility.py --per-unit 2000 --requests 400
	env -u DATABASE_URL $(PY) benchmarks/intake.py --requests 400
	env -u DATABASE_URL $(PY) benchmarks/update.py --requests 400
	if [ -n "$$DATABASE_URL" ]; then $(PY) benchmarks/bulk_transitions.py && $(PY) benchmarks/api.py && $(PY) benchmarks/visibility.py && $(PY) benchmarks/intake.py && $(PY) benchmarks/update.py; fi

# The bulk start at 100,000 jobs against raw SQL on DATABASE_URL's PostgreSQL (a few minutes).
bench-large: install
	$(PY) benchmarks/bulk_transitions.py --jobs 100000 --small 10000 --transitions start_progress --without-naive

# A million pending jobs started by a background run on 2 Celery workers, against raw SQL, with
# the admin and the API measured while it goes on (DATABASE_URL=postgres://… REDIS_URL=redis://…;
# 10 minutes or more).
bench-runs: install
	$(PY) benchmarks/background_runs.py

# A real server under load: gunicorn on PostgreSQL, the API and the command racing (needs
# DATABASE_URL=postgres://…; it works in a scratch database it creates and drops).
load: install
	$(PY) benchmarks/load.py

graphviz:
	@command -v dot >/dev/null || { echo "make graph needs Graphviz's dot: apt-get install graphviz"; exit 1; }

# Regenerates the life cycle picture in the README from the model (needs Graphviz's `dot`).
graph: graphviz install
	$(PY) manage.py graph_transitions -o docs/life_cycle.png jobs.Job.life_cycle_state
	rm -f docs/life_cycle

clean:
	rm -rf $(VENV) $(NEXT_VENV) db.sqlite3 db.sqlite3-* .pytest_cache .ruff_cache staticfiles .broker
