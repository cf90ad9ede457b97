"""gunicorn's settings, read from the environment (every variable is in .env.example).

gunicorn -c gunicorn.conf.py config.wsgi      # what `make serve` and the Procfile run
"""

import multiprocessing
import os
import tempfile

bind = (
    os.environ.get("GUNICORN_BIND")
    or f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
)
# Synchronous workers: each request holds one for its whole life, so count them by cores.
workers = int(os.environ.get("GUNICORN_WORKERS") or multiprocessing.cpu_count() * 2 + 1)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# A worker is replaced after this many requests (with jitter), so a slow leak never grows far.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
# The application logs one JSON line per request with its id; gunicorn's access log is a second,
# plain one: off unless asked for ("-" for standard output).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Whose X-Forwarded-* headers gunicorn believes: nobody's unless set (a client could claim HTTPS).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")

# Prometheus metrics from several worker processes are added up through files in one directory.
if os.environ.get("METRICS_ENABLED", "").lower() in {"1", "true", "yes", "on"}:
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="jobs-metrics-"))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
