"""Seed a demo workspace with a realistic synthetic store. Idempotent: a second run finds the data and stops."""

import importlib
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django_scopes import scope

from crm.demo_data import generate_store
from crm.models import Membership, Role, User, Workspace

DEMO_PASSWORD = "demo-password-1"
DEMO_MEMBERS = [
    ("demo@example.com", "Dana Owner", Role.OWNER),
    ("marketer@example.com", "Mark Eter", Role.MARKETER),
    ("support@example.com", "Sam Support", Role.SUPPORT),
]
# Each app may add its own demo data with a ``seed(*, workspace)`` function in ``<app>/demo.py``.
APP_SEEDERS = [
    "customers.demo:seed",
    "segments.demo:seed",
    "analytics.demo:seed",
    "support.demo:seed",
    "campaigns.demo:seed",
    "integrations.demo:seed",
]


class Command(BaseCommand):
    help = "Create (or top up) a demo workspace with customers, products, orders, carts and storefront events."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2000)
        parser.add_argument("--orders", type=int, default=5000)
        parser.add_argument("--workspace", default="demo", help="slug of the workspace to fill (created if missing)")
        parser.add_argument("--no-events", action="store_true", help="skip storefront events (faster)")
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **options):
        from customers import services
        from customers.models import Customer

        if options["customers"] < 1 or options["orders"] < 0:
            raise CommandError("--customers must be at least 1 and --orders at least 0")
        started = time.perf_counter()
        workspace, created = Workspace.objects.get_or_create(
            slug=options["workspace"],
            defaults={
                "name": "Demo Outfitters" if options["workspace"] == "demo" else options["workspace"].title(),
                "timezone": "America/New_York",
                "currency": "USD",
            },
        )
        self._ensure_members(workspace)
        with scope(workspace=workspace):
            if Customer.objects.filter(workspace=workspace).exists():
                self.stdout.write(f"Workspace {workspace.slug!r} already has data; nothing to seed.")
                return
            store = generate_store(
                customers=options["customers"],
                orders=options["orders"],
                now=timezone.now(),
                seed=options["seed"],
                events=not options["no_events"],
            )
            self._progress(
                f"generated {len(store.customers)} customers, {len(store.orders)} orders, {len(store.events)} events",
                started,
            )
            services.products_bulk_upsert(workspace=workspace, records=store.products)
            services.customers_bulk_upsert(workspace=workspace, records=store.customers)
            self._progress("customers and products written", started)
            services.carts_bulk_upsert(workspace=workspace, records=store.carts)
            services.carts_mark_abandoned(workspace=workspace)
            with transaction.atomic():
                services.orders_bulk_upsert(workspace=workspace, records=store.orders, refresh_stats=False)
                services.customer_stats_refresh(workspace=workspace)
            self._progress("orders written, customer stats computed", started)
            services.events_bulk_record(workspace=workspace, records=store.events)
            self._progress("events written", started)
            for dotted in APP_SEEDERS:
                self._run_app_seeder(dotted, workspace, started)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded workspace {workspace.slug!r} in {time.perf_counter() - started:.1f} s. "
                f"Sign in as demo@example.com / {DEMO_PASSWORD}"
            )
        )

    def _ensure_members(self, workspace: Workspace) -> None:
        with scope(workspace=workspace):
            for email, name, role in DEMO_MEMBERS:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = User.objects.create_user(email=email, password=DEMO_PASSWORD, full_name=name)
                Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})

    def _run_app_seeder(self, dotted: str, workspace: Workspace, started: float) -> None:
        module_name, function_name = dotted.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            return
        seeder = getattr(module, function_name, None)
        if seeder is None:
            return
        try:
            seeder(workspace=workspace)
        except Exception as error:  # noqa: BLE001 - one app's demo data must not stop the others
            self.stderr.write(self.style.WARNING(f"{dotted} failed: {error!r}"))
        else:
            self._progress(f"{module_name} demo data", started)

    def _progress(self, message: str, started: float) -> None:
        self.stdout.write(f"  {time.perf_counter() - started:6.1f} s  {message}")
