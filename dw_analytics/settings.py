"""Django settings for dw_analytics.

SQLite (``data/dw.sqlite3``) by default; set ``DATABASE_URL`` (for example
``postgres://postgres@127.0.0.1:5432/test``) to use PostgreSQL. Secrets come
only from the environment.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DW_DATA_DIR", BASE_DIR / "data"))

# Outside DEBUG a real key must come from the environment; the fallback only
# serves local development, tests and the demo.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "dw_analytics.sales",
    "dw_analytics.warehouse",
    "dw_analytics.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dw_analytics.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "dw_analytics.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'dw.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers (notebooks, the run pages) see the last committed
    # result while a pipeline writes; the timeout rides out short write locks.
    # A 64 MB page cache (the default is 2 MB) makes million-row indexed
    # inserts ~4x faster: index pages stop spilling to the WAL mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;",
            "transaction_mode": "IMMEDIATE",
        }
    )
    # A file, not memory, so that tests can hand the database to other
    # processes (a Celery worker, a concurrent run, a process killed mid-load).
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"dw_test_{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

LOGIN_URL = "/admin/login/"

# Where every file output lives; loaders refuse paths that escape it.
DW_OUTPUT_DIR = Path(os.environ.get("DW_OUTPUT_DIR", DATA_DIR / "out"))
# Incremental loads take only changes older than this, so a transaction that
# commits late cannot slip behind the watermark (it is picked up next run).
DW_WATERMARK_LAG_S = int(os.environ.get("DW_WATERMARK_LAG_S", "120"))
# How the admin's "run now" runs a pipeline: "celery", "sync" or "auto" (Celery when a worker answers).
DW_RUN_NOW_MODE = os.environ.get("DW_RUN_NOW_MODE", "auto")
# The nightly report's charts also as PNG files (matplotlib): off by default, since drawing
# them costs about 0.8 s a night (half of it importing matplotlib); the workbook's charts are native.
DW_REPORT_PNG = os.environ.get("DW_REPORT_PNG", "0") == "1"
DW_ENGINE = os.environ.get("DW_ENGINE", "pandas")
DW_DASK_SCHEDULER = os.environ.get("DW_DASK_SCHEDULER", "")

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

ADMINS = [tuple(a.split(":", 1)) for a in os.environ.get("DW_ADMINS", "").split(",") if ":" in a]
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"dw_analytics": {"handlers": ["console"], "level": os.environ.get("DW_LOG_LEVEL", "WARNING")}},
}
