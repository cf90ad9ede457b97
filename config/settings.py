"""Settings read from the environment, with defaults that suit a laptop and nothing else.

Production sets DEBUG=0, SECRET_KEY, DATABASE_URL and ALLOWED_HOSTS (see .env.example).
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


# A typo must stop the start, not quietly become "off": SESSION_COOKIE_SECURE=ture would have
# served the session cookie over plain HTTP without a word.
FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False}
FLAGS |= {"no": False, "off": False}


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    if value.strip() == "":
        return default
    try:
        return FLAGS[value.strip().lower()]
    except KeyError:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a yes or no: use 1/0, true/false, yes/no or on/off."
        ) from None


def env_number(name: str, default: float, kind: type = int) -> Any:
    """A whole number (or, with kind=float, any number) from the environment; else stop."""
    value = os.environ.get(name, "")
    if value.strip() == "":
        return kind(default)
    try:
        return kind(value)
    except ValueError:
        words = "a whole number" if kind is int else "a number"
        raise ImproperlyConfigured(f"{name}={value!r} is not {words}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_flag("DEBUG", default=True)

# Demo only: this key signs nothing that matters on a laptop; refused below when DEBUG is off.
DEV_SECRET_KEY = "dev-only-insecure-key-do-not-deploy"
SECRET_KEY = os.environ.get("SECRET_KEY") or DEV_SECRET_KEY
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

# HTTPS, each read from the variable of the setting's own name. Off by default (a laptop serves
# plain HTTP); .env.example gives the production values, with which `check --deploy` is clean.
SECURE_SSL_REDIRECT = env_flag("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env_number("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_flag("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env_flag("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env_flag("CSRF_COOKIE_SECURE", default=False)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Only behind a proxy that sets X-Forwarded-Proto itself: otherwise any client could claim HTTPS.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_flag("BEHIND_HTTPS_PROXY", default=False) else None
)
# Health checks come from load balancers over plain HTTP, by address rather than by name.
SECURE_REDIRECT_EXEMPT = [r"^health/"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_filters",
    "django_fsm",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "jobs",
]

# Prometheus (docs/deploy.md): off by default. Off, its middleware is left out too, rather than
# counting every request for nobody.
METRICS_ENABLED = env_flag("METRICS_ENABLED", default=False)

MIDDLEWARE = [
    # First, so it times and counts everything the request does (jobs.metrics).
    *(["jobs.metrics.MetricsMiddleware"] if METRICS_ENABLED else []),
    "jobs.observability.RequestLogMiddleware",
    # Before anything reads the Host header: probes come by address (jobs.health).
    "jobs.health.ProbesAnyHost",
    "django.middleware.security.SecurityMiddleware",
    # Static files are WhiteNoise's with DEBUG off (see STORAGES), under runserver too, from what
    # collectstatic gathered; with DEBUG on, runserver serves them from the apps.
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),
    "jobs.observability.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_number("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # SQLite has no row locks: BEGIN IMMEDIATE takes the write lock when a transaction
        # starts, so the read that decides "this job is pending" and the write that starts it
        # cannot interleave with another writer's.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Prepared statements on PostgreSQL (docs/deploy.md): "all" binds every statement's parameters on
# the server (Django's documented `server_side_binding`), and psycopg prepares each on its second
# run (`prepare_threshold`); "none" binds on the client and prepares nothing, for PgBouncer in
# transaction mode before 1.21. 0 and 1 are the older spellings; "requests", an older default, is
# now "all".
_prepared = os.environ.get("DATABASE_PREPARED_STATEMENTS", "all").strip().lower()
DATABASE_PREPARED_STATEMENTS = {"0": "none", "1": "all", "requests": "all"}.get(
    _prepared, _prepared
)
if DATABASE_PREPARED_STATEMENTS not in ("none", "all"):
    raise ImproperlyConfigured(
        f"DATABASE_PREPARED_STATEMENTS must be all or none, not {DATABASE_PREPARED_STATEMENTS!r}"
    )
if (
    DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    and DATABASE_PREPARED_STATEMENTS == "all"
):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=1
    )

# Who may read /metrics when it is on: by client address, loopback unless told otherwise.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")

# With REDIS_URL, the cache (and so login throttling) is shared by every worker on every machine;
# without it each process counts alone. If Redis cannot be reached, the cache falls back to the
# process's own memory and logs a warning, rather than failing requests.
REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES = {
    "default": (
        {
            "BACKEND": "jobs.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "jobs",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Webhook deliveries run in Celery workers. The broker is Redis (REDIS_URL, or
# CELERY_BROKER_URL); without either, a folder on disk, so `make run` needs no server.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost/"
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_FOLDER = Path(os.environ.get("BROKER_FOLDER") or BASE_DIR / ".broker")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "messages"),
        "data_folder_out": str(BROKER_FOLDER / "messages"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        "control_folder": str(BROKER_FOLDER / "control"),  # not ./control in the working folder
        "store_processed": False,
    }
    CELERY_BEAT_SCHEDULE_FILENAME = str(BROKER_FOLDER / "celerybeat-schedule")
else:
    # Publishing gives up quickly when the broker is away: the sweep delivers later.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 5}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker logs through LOGGING's handler; its own on the root logger printed each line twice.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "webhook-sweep": {
        "task": "jobs.tasks.sweep",
        "schedule": env_number("WEBHOOK_SWEEP_SECONDS", 10, float),
    },
    "outbox-prune": {"task": "jobs.tasks.prune", "schedule": 24 * 3600.0},
    "transition-run-sweep": {
        "task": "jobs.runs.sweep",
        "schedule": env_number("JOBS_RUN_SWEEP_SECONDS", 15, float),
    },
}
# Background transition runs (jobs.tasks.runs) have a queue, and a worker process, of their own.
CELERY_TASK_ROUTES = {
    "jobs.runs.plan": {"queue": "runs"},
    "jobs.runs.work": {"queue": "runs"},
}
# What carries out the service's requests after commit (jobs.services.engine): Celery.
JOBS_TASK_ENGINE = "jobs.tasks.engine.CELERY"
# Events already fanned out and finished webhook deliveries are deleted once older than this
# (jobs.retention; the transition log is kept). The feed's clients must read within it.
JOBS_OUTBOX_RETENTION_DAYS = env_number("JOBS_OUTBOX_RETENTION_DAYS", 30)

WEBHOOK_TIMEOUT_SECONDS = env_number("WEBHOOK_TIMEOUT_SECONDS", 10, float)
# Retries: the first after about WEBHOOK_RETRY_BASE_SECONDS, each about twice the last (jittered,
# at most an hour), until WEBHOOK_RETRY_FOR_SECONDS after the event: then the delivery fails.
WEBHOOK_RETRY_BASE_SECONDS = env_number("WEBHOOK_RETRY_BASE_SECONDS", 30, float)
WEBHOOK_RETRY_FOR_SECONDS = env_number("WEBHOOK_RETRY_FOR_SECONDS", 24 * 3600, float)
# How long a worker may hold a delivery before the sweep hands it to another.
WEBHOOK_LEASE_SECONDS = env_number("WEBHOOK_LEASE_SECONDS", WEBHOOK_TIMEOUT_SECONDS + 20, float)
# With DEBUG off, endpoints on loopback, private or link-local addresses are refused unless this.
WEBHOOK_ALLOW_PRIVATE_URLS = env_flag("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's model permissions, a user's own and their groups' read in one query (jobs.backends).
AUTHENTICATION_BACKENDS = ["jobs.backends.PermissionsInOneQueryBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Dates in answers and in the admin are in this zone, each with its offset; stored in UTC.
TIME_ZONE = os.environ.get("TIME_ZONE") or "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles"
# WhiteNoise serves what collectstatic gathered, compressed and under hashed names (cached for a
# year). With DEBUG on (a laptop, the tests) files are found where they are, unhashed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# One JSON line per record (LOG_FORMAT=text for people), each carrying the request's id.
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "jobs.observability.formatter", "fmt": LOG_FORMAT}},
    "filters": {"skip_503": {"()": "jobs.observability.SkipServiceUnavailable"}},
    "handlers": {
        # Standard error: a command's standard output is for its results.
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "level": LOG_LEVEL,
            "formatter": "structured",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler (DEBUG only) would print its records a second time, beside
        # the root handler's JSON line.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        # Our request line replaces Django's and runserver's own per-request lines.
        "django.request": {"level": "ERROR", "filters": ["skip_503"]},
        "django.server": {"level": "WARNING"},
    },
}

# The username the start_job_progress command records when --user is not given.
JOBS_COMMAND_DEFAULT_USER = os.environ.get("JOBS_COMMAND_DEFAULT_USER", "")
# How many jobs a bulk start locks, changes and commits at a time.
JOBS_BULK_BATCH_SIZE = env_number("JOBS_BULK_BATCH_SIZE", 500)
# Where people reach the admin: the commands print a background run's page under it.
JOBS_SITE_URL = os.environ.get("JOBS_SITE_URL", "http://127.0.0.1:8000")
# An admin selection above this many jobs becomes a background run (jobs.services.runs).
JOBS_BULK_INLINE_LIMIT = env_number("JOBS_BULK_INLINE_LIMIT", 5000)
# A run is cut into chunks of this many jobs; a worker leases one at a time, and a chunk whose
# lease has run out (its worker died) is taken over. JOBS_RUN_TASKS messages work on a run at once.
JOBS_RUN_CHUNK_SIZE = env_number("JOBS_RUN_CHUNK_SIZE", 10000)
JOBS_RUN_LEASE_SECONDS = env_number("JOBS_RUN_LEASE_SECONDS", 60, float)
JOBS_RUN_TASKS = env_number("JOBS_RUN_TASKS", 4)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "jobs.api.authentication.CrmTokenAuthentication",
        # for the browsable docs, when logged in to the admin
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["jobs.api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "jobs.api.envelope.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"login": os.environ.get("LOGIN_RATE", "10/minute")},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # OPTIONS answers with the allowed methods in the envelope; the schema says the rest.
    "DEFAULT_METADATA_CLASS": "jobs.api.metadata.AllowedMethods",
}

SIMPLE_JWT = {
    # One token, as CRM.COM's: valid for 2 hours; releasing it blacklists it.
    "AUTH_TOKEN_CLASSES": ("rest_framework_simplejwt.tokens.SlidingToken",),
    "SLIDING_TOKEN_LIFETIME": timedelta(hours=2),
    "SLIDING_TOKEN_REFRESH_LIFETIME": timedelta(hours=2),
    "SIGNING_KEY": SECRET_KEY,
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "jobs: field jobs through their life cycle, CRM.COM style",
    "DESCRIPTION": "Every response is an envelope: {status: {code, message, description}, data}.",
    "VERSION": "2",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/crmapi/rest/v2",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "jobs.api.schema.paths_without_trailing_slash",
        "jobs.api.schema.one_of_bodies_required",
        "jobs.api.schema.closed_bodies",
    ],
    "ENUM_NAME_OVERRIDES": {
        "LifeCycleStateEnum": "jobs.models.LifeCycleState",
        "ChannelEnum": "jobs.models.Channel",
        "TransitionEnum": "jobs.transitions.TRANSITION_NAMES",
    },
}
