"""Celery application: Redis broker, configuration from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dw_analytics.settings")

app = Celery("dw_analytics")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
