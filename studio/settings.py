"""Settings for AI Studio, read from the environment.

With no configuration the studio runs on SQLite with the offline demo model, so
`make demo` needs nothing installed. Production sets DJANGO_DEBUG=false,
DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and DATABASE_URL (see README).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from exc


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATA_DIR = Path(os.environ.get("STUDIO_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", default=False)
# The demo (`make demo`): one machine, plain HTTP on loopback, static files
# straight from the source folders, and the demo login shown on the login
# page. DEBUG stays off, so that the demo shows the studio's own pages
# (errors included), not Django's technical ones. Never on a public site.
STUDIO_DEMO = env_bool("STUDIO_DEMO", default=False)


def _secret_key() -> str:
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    # A single machine without configuration (the demo) keeps a random key on
    # disk so that sessions survive a restart; several machines must share
    # DJANGO_SECRET_KEY.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "modeltranslation",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "csp",
    "studio",
    "templates_catalog",
    "generation",
]

MIDDLEWARE = [
    # First: nothing below sees a request line or header that breaks the text rule.
    "studio.middleware.request_hygiene_middleware",
    "django.middleware.security.SecurityMiddleware",
    "studio.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "studio.middleware.BusyDatabaseMiddleware",
]

ROOT_URLCONF = "studio.urls"
ASGI_APPLICATION = "studio.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "studio" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "generation.context_processors.studio",
            ],
            # The `{% partialdef %}` syntax that Django 6 has built in.
            "builtins": [
                "template_partials.templatetags.partials",
                "studio.templatetags.studio_tags",
            ],
        },
    },
]

_sqlite_default = f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
# An empty DATABASE_URL means the default, as if it were unset.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or _sqlite_default, conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the stream readers and the generation writer work side by side;
    # IMMEDIATE transactions avoid "database is locked" on upgrade from read to write.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Tests on a file, not in memory: the runner's threads then share it the way
    # they share the real one (an in-memory database locks whole tables).
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request runs on a thread of its own, so a connection per
    # thread means one per request: a pool shares a few among them all, and a
    # burst of requests waits for one instead of exhausting the server's limit.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": int(env_float("STUDIO_DB_POOL_SIZE", 20)),
        "timeout": 30,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog:home"
LOGOUT_REDIRECT_URL = "catalog:home"

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("STUDIO_TIME_ZONE", "Asia/Tokyo")
USE_I18N = True
USE_TZ = True

MODELTRANSLATION_DEFAULT_LANGUAGE = "ja"
MODELTRANSLATION_FALLBACK_LANGUAGES = {"default": ("ja", "en")}

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns about a missing one
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("STUDIO_MEDIA_ROOT", DATA_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or STUDIO_DEMO
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG or STUDIO_DEMO

# Security. Production (DEBUG and the demo off) is HTTPS-only by default; behind a proxy
# that terminates TLS set DJANGO_SECURE_PROXY_SSL_HEADER=true.
SECURE = not (DEBUG or STUDIO_DEMO)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=SECURE)
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# A form sent without its token (an old tab, cookies blocked) gets the site's
# own page, in the person's language, not Django's.
CSRF_FAILURE_VIEW = "studio.errors.csrf_failure"
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# No inline script or style anywhere: model output that slipped through
# sanitising still could not run.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("STUDIO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- The studio's own settings -------------------------------------------
STUDIO_LLM_PROVIDER = os.environ.get("STUDIO_LLM_PROVIDER", "demo")
STUDIO_IMAGE_PROVIDER = os.environ.get("STUDIO_IMAGE_PROVIDER", "demo")
STUDIO_OPENAI_MODEL = os.environ.get("STUDIO_OPENAI_MODEL", "gpt-4.1-mini")
# The model for templates of the "advanced" tier; the default model if unset.
STUDIO_OPENAI_ADVANCED_MODEL = os.environ.get("STUDIO_OPENAI_ADVANCED_MODEL", "")
STUDIO_VERTEX_MODEL = os.environ.get("STUDIO_VERTEX_MODEL", "gemini-2.5-flash")
STUDIO_VERTEX_ADVANCED_MODEL = os.environ.get("STUDIO_VERTEX_ADVANCED_MODEL", "")
# A Vertex AI endpoint other than Google's (a private gateway or a local fake).
STUDIO_VERTEX_BASE_URL = os.environ.get("STUDIO_VERTEX_BASE_URL", "")
# Upper bound on the length of one answer, in tokens (0: the model's own limit).
STUDIO_MAX_OUTPUT_TOKENS = int(env_float("STUDIO_MAX_OUTPUT_TOKENS", 4096))
# Timeouts sized for a person waiting at a page: connecting, and between two chunks.
STUDIO_PROVIDER_CONNECT_TIMEOUT = env_float("STUDIO_PROVIDER_CONNECT_TIMEOUT", 5.0)
STUDIO_PROVIDER_READ_TIMEOUT = env_float("STUDIO_PROVIDER_READ_TIMEOUT", 60.0)
# Retries of a failed request (429, 5xx, connection errors) before the first token.
STUDIO_PROVIDER_RETRIES = int(env_float("STUDIO_PROVIDER_RETRIES", 2))
# A Retry-After longer than this is not waited for: the person is told instead.
STUDIO_PROVIDER_MAX_RETRY_AFTER = env_float("STUDIO_PROVIDER_MAX_RETRY_AFTER", 20.0)
# Tokens a second that the offline demo model streams at (0 streams at once).
STUDIO_DEMO_TOKENS_PER_SECOND = env_float("STUDIO_DEMO_TOKENS_PER_SECOND", 40.0)
# Seconds between ": ping" comments on an idle event stream.
STUDIO_SSE_HEARTBEAT_SECONDS = env_float("STUDIO_SSE_HEARTBEAT_SECONDS", 15.0)
# Milliseconds the browser waits before reconnecting a dropped stream.
STUDIO_SSE_RETRY_MS = int(env_float("STUDIO_SSE_RETRY_MS", 1500))
# Seconds between saves of the text generated so far (what survives a crash).
STUDIO_CHECKPOINT_SECONDS = env_float("STUDIO_CHECKPOINT_SECONDS", 1.0)
# Seconds a finished generation's events stay in memory for late readers;
# after that they are replayed from the database.
STUDIO_EVENT_LOG_RETENTION_SECONDS = env_float("STUDIO_EVENT_LOG_RETENTION_SECONDS", 120.0)
# Deltas arriving within this many milliseconds of the last event go out as one
# event; a lone token is never held back longer.
STUDIO_COALESCE_MS = env_float("STUDIO_COALESCE_MS", 40.0)
# Stop a generation when its last reader leaves (after a grace period, so that
# a refresh does not kill it). By default it finishes and lands in history.
STUDIO_CANCEL_ON_DISCONNECT = env_bool("STUDIO_CANCEL_ON_DISCONNECT", False)
STUDIO_DISCONNECT_GRACE_SECONDS = env_float("STUDIO_DISCONNECT_GRACE_SECONDS", 10.0)
# Seconds after a generation ends before its delivery is settled without a
# reader having received `done` (generation.signals.generation_finished).
STUDIO_DELIVERY_GRACE_SECONDS = env_float("STUDIO_DELIVERY_GRACE_SECONDS", 5.0)
# A running generation's owner renews its lease; one not renewed for this long
# belongs to a process that died, and is marked failed with its saved text.
STUDIO_LEASE_SECONDS = env_float("STUDIO_LEASE_SECONDS", 30.0)
# Redis for the event log and signals across processes; unset: one process, in memory.
REDIS_URL = os.environ.get("REDIS_URL", "")

# --- Limits and usage --------------------------------------------------------
# Text generations talking to the model at once, per provider, across every
# process (through Redis with REDIS_URL); the rest wait in line, first come
# first served, and are told their place.
STUDIO_MAX_CONCURRENT_GENERATIONS = int(env_float("STUDIO_MAX_CONCURRENT_GENERATIONS", 32))
# How many may wait in line; past that a request is refused with 429.
STUDIO_MAX_QUEUED_GENERATIONS = int(env_float("STUDIO_MAX_QUEUED_GENERATIONS", 500))
# Whether people's plans (studio.Plan: generations at once and a minute, daily
# and monthly output tokens and images) are enforced.
STUDIO_ENFORCE_PLANS = env_bool("STUDIO_ENFORCE_PLANS", True)
# Output tokens reserved against a person's quota when a text generation starts
# (its answer is capped at what was reserved; the rest is given back).
STUDIO_QUOTA_TOKEN_RESERVATION = int(
    env_float("STUDIO_QUOTA_TOKEN_RESERVATION", STUDIO_MAX_OUTPUT_TOKENS or 4096)
)
# Estimated prices by model name: US dollars per million input and output
# tokens, and per image. JSON in STUDIO_PRICES_JSON replaces the table; models
# missing from it are counted as free. Check your provider's current prices.
STUDIO_PRICES = {
    "gpt-4.1": {"input": 2.0, "output": 8.0},
    "gpt-4.1-mini": {"input": 0.4, "output": 1.6},
    "gpt-4o-mini": {"input": 0.15, "output": 0.6},
    "gemini-2.5-flash": {"input": 0.3, "output": 2.5},
    "gemini-2.5-pro": {"input": 1.25, "output": 10.0},
    "imagen-4.0-generate-001": {"image": 0.04},
    "demo": {},
}
if os.environ.get("STUDIO_PRICES_JSON"):
    import json

    STUDIO_PRICES = json.loads(os.environ["STUDIO_PRICES_JSON"])
# The currency people see costs in (the price table stays in US dollars, and
# staff pages show dollars), and how many of it a US dollar buys. Yen is the
# default; any other currency needs its rate.
STUDIO_CURRENCY = os.environ.get("STUDIO_CURRENCY", "JPY").strip().upper() or "JPY"
_DEFAULT_RATES = {"JPY": 155.0, "USD": 1.0}
if not os.environ.get("STUDIO_CURRENCY_PER_USD") and STUDIO_CURRENCY not in _DEFAULT_RATES:
    raise ImproperlyConfigured(
        f"STUDIO_CURRENCY is {STUDIO_CURRENCY}: set STUDIO_CURRENCY_PER_USD to its rate"
    )
STUDIO_CURRENCY_PER_USD = env_float(
    "STUDIO_CURRENCY_PER_USD", _DEFAULT_RATES.get(STUDIO_CURRENCY, 1.0)
)
if STUDIO_CURRENCY_PER_USD <= 0:
    raise ImproperlyConfigured("STUDIO_CURRENCY_PER_USD must be a positive number")

# --- Images ----------------------------------------------------------------
# Image model names are settings: models are retired (gpt-image-1 was in 2026).
STUDIO_OPENAI_IMAGE_MODEL = os.environ.get("STUDIO_OPENAI_IMAGE_MODEL", "gpt-image-2")
STUDIO_OPENAI_ADVANCED_IMAGE_MODEL = os.environ.get("STUDIO_OPENAI_ADVANCED_IMAGE_MODEL", "")
STUDIO_VERTEX_IMAGE_MODEL = os.environ.get("STUDIO_VERTEX_IMAGE_MODEL", "imagen-4.0-generate-001")
STUDIO_VERTEX_ADVANCED_IMAGE_MODEL = os.environ.get("STUDIO_VERTEX_ADVANCED_IMAGE_MODEL", "")
# Partial previews to ask for while an image is drawn (0-3, where the model streams).
STUDIO_IMAGE_PARTIAL_PREVIEWS = int(env_float("STUDIO_IMAGE_PARTIAL_PREVIEWS", 2))
# Seconds one image request may take before it is given up (and retried).
STUDIO_IMAGE_REQUEST_TIMEOUT = env_float("STUDIO_IMAGE_REQUEST_TIMEOUT", 180.0)
# Seconds the offline demo model takes to draw one image (0 draws at once).
STUDIO_DEMO_IMAGE_SECONDS = env_float("STUDIO_DEMO_IMAGE_SECONDS", 2.0)
# Images larger than this many pixels are refused (decompression bombs).
STUDIO_IMAGE_MAX_PIXELS = int(env_float("STUDIO_IMAGE_MAX_PIXELS", 40_000_000))
# Seconds between two asks of an image job waiting for a slot of its model
# (STUDIO_MAX_CONCURRENT_GENERATIONS per image provider, with REDIS_URL).
STUDIO_IMAGE_SLOT_POLL_SECONDS = env_float("STUDIO_IMAGE_SLOT_POLL_SECONDS", 2.0)
# The longer side of thumbnails, in pixels, and the quality of the WebP copies.
STUDIO_IMAGE_THUMBNAIL_SIZE = int(env_float("STUDIO_IMAGE_THUMBNAIL_SIZE", 384))
STUDIO_IMAGE_WEBP_QUALITY = int(env_float("STUDIO_IMAGE_WEBP_QUALITY", 85))

# --- Celery (image generations) ------------------------------------------------
# With REDIS_URL, Redis is the broker: any number of workers on any number of
# machines. Without it, an embedded broker in files under the data folder lets
# `make demo` run a worker with nothing installed (one machine only).
# A task running longer than this is stopped (soft: the generation is failed
# with a clear message; hard: the worker process is replaced).
STUDIO_IMAGE_TASK_SOFT_TIME_LIMIT = int(env_float("STUDIO_IMAGE_TASK_SOFT_TIME_LIMIT", 240))
STUDIO_IMAGE_TASK_TIME_LIMIT = int(env_float("STUDIO_IMAGE_TASK_TIME_LIMIT", 300))
# Attempts of one image generation after 429/5xx/timeouts, with exponential backoff.
STUDIO_IMAGE_TASK_RETRIES = int(env_float("STUDIO_IMAGE_TASK_RETRIES", 4))
STUDIO_IMAGE_RETRY_BACKOFF_SECONDS = env_float("STUDIO_IMAGE_RETRY_BACKOFF_SECONDS", 2.0)
# A task taken but not acknowledged (its worker machine died) goes back to the
# queue after this many seconds; it must exceed the hard time limit.
STUDIO_IMAGE_VISIBILITY_TIMEOUT = int(
    env_float("STUDIO_IMAGE_VISIBILITY_TIMEOUT", STUDIO_IMAGE_TASK_TIME_LIMIT * 2)
)
# An image job that no worker has taken after this long is failed as lost.
STUDIO_IMAGE_QUEUE_TIMEOUT = env_float("STUDIO_IMAGE_QUEUE_TIMEOUT", 3600.0)
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = (
    {
        "visibility_timeout": STUDIO_IMAGE_VISIBILITY_TIMEOUT,
        # Look for such jobs every few seconds (kombu's default amounts to ~100 s).
        "unacked_restore_interval": max(1, min(10, STUDIO_IMAGE_VISIBILITY_TIMEOUT // 3)),
        "unacked_restore_throttle": 1,
    }
    if REDIS_URL
    else {
        "data_folder_in": str(DATA_DIR / "celery" / "queue"),
        "data_folder_out": str(DATA_DIR / "celery" / "queue"),
        "control_folder": str(DATA_DIR / "celery" / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
)
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "studio"
# A task is acknowledged when it has finished, not when it is taken, and a
# worker process that dies puts it back: no image job is lost to a crash.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Image jobs are long: a worker takes one at a time, leaving the rest to others.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = STUDIO_IMAGE_TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = STUDIO_IMAGE_TASK_TIME_LIMIT
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
if not REDIS_URL:
    for _folder in ("queue", "control"):
        (DATA_DIR / "celery" / _folder).mkdir(parents=True, exist_ok=True)
