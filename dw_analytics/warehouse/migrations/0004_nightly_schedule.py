"""The default Celery beat schedule: ``nightly`` at 02:00 America/Sao_Paulo (editable in the admin)."""

import json

from django.db import migrations

TASK_NAME = "dw_analytics: nightly refresh"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="America/Sao_Paulo"
    )
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "dw_analytics.run_pipeline",
            "crontab": crontab,
            "args": json.dumps(["nightly"]),
            "kwargs": json.dumps({"triggered_by": "celery-beat"}),
            "description": "Refresh the warehouse and the Power BI / Excel outputs every night.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("warehouse", "0003_pipeline_lock"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
