"""``manage.py generate_demo_data``: fill the sales app with deterministic demo data."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.sales.services import demo_data_create


class Command(BaseCommand):
    help = "Generate deterministic, realistic demo data (categories, products, customers, orders, external rows)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, default=100_000, help="number of orders (default 100,000)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument(
            "--end", type=dt.date.fromisoformat, default=None, help="last order date, YYYY-MM-DD (default yesterday)"
        )
        parser.add_argument("--years", type=int, default=2, help="whole years of history before --end (default 2)")
        parser.add_argument("--reset", action="store_true", help="delete existing sales data first")

    def handle(self, *args, orders: int, seed: int, end: dt.date | None, years: int, reset: bool, **options) -> None:
        if orders < 0:
            raise CommandError("--orders must be >= 0")
        if years < 1:
            raise CommandError("--years must be >= 1")
        started = time.perf_counter()
        counts = demo_data_create(orders=orders, seed=seed, end=end, years=years, reset=reset)
        if counts is None:
            self.stdout.write("Demo data already present; nothing changed (use --reset to regenerate).")
            return
        summary = ", ".join(f"{n:,} {name}" for name, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Generated {summary} in {time.perf_counter() - started:.1f} s."))
