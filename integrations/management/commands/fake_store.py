"""Run the local fake Shopify and WooCommerce stores with generated data, so a newcomer can connect the demo
workspace to them and watch a sync (and optionally receive a stream of signed webhooks)."""

import random
import time

import httpx
from django.core.management.base import BaseCommand
from django.utils import timezone

from integrations.fake_store import FakeShopify, FakeWooCommerce, generate, render
from integrations.fake_store.webhooks import shopify_delivery, woocommerce_delivery


class Command(BaseCommand):
    help = "Run a fake Shopify and a fake WooCommerce store on 127.0.0.1 with generated customers and orders."

    def add_arguments(self, parser):
        parser.add_argument("--shopify-port", type=int, default=8701)
        parser.add_argument("--woocommerce-port", type=int, default=8702)
        parser.add_argument("--customers", type=int, default=200)
        parser.add_argument("--products", type=int, default=25)
        parser.add_argument("--orders", type=int, default=800)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--webhook-secret", default="fake-webhook-secret")
        parser.add_argument(
            "--shopify-webhook-url", default="", help="POST a new signed orders/create here every few seconds"
        )
        parser.add_argument(
            "--woocommerce-webhook-url", default="", help="POST a new signed order.created here every few seconds"
        )
        parser.add_argument(
            "--every", type=float, default=10.0, help="Seconds between live orders (with a webhook URL)"
        )

    def handle(self, *args, **options):
        shopify_data = generate(
            seed=options["seed"],
            customers=options["customers"],
            products=options["products"],
            orders=options["orders"],
            days=options["days"],
        )
        woo_data = generate(
            seed=options["seed"] + 1,
            customers=options["customers"],
            products=options["products"],
            orders=options["orders"],
            days=options["days"],
            checkouts=0,
        )
        shopify = FakeShopify(shopify_data, port=options["shopify_port"]).start()
        woo = FakeWooCommerce(woo_data, port=options["woocommerce_port"]).start()
        secret = options["webhook_secret"]
        self.stdout.write(self.style.SUCCESS("Fake stores are running (Ctrl-C to stop).\n"))
        self.stdout.write(
            f"Shopify      address: {shopify.url}\n             access token: {shopify.access_token}\n"
            f"             webhook secret: {secret}\n"
        )
        self.stdout.write(
            f"WooCommerce  address: {woo.url}\n             consumer key: {woo.consumer_key}\n"
            f"             consumer secret: {woo.consumer_secret}\n             webhook secret: {secret}\n"
        )
        self.stdout.write(
            f"{len(shopify_data.customers)} customers, {len(shopify_data.products)} products, "
            f"{len(shopify_data.orders)} orders in each store.\n"
        )
        self.stdout.write(
            "Add them on /w/demo/integrations/ (local addresses need INTEGRATIONS_ALLOW_LOCAL_STORES, on "
            "with DEBUG). Pass --shopify-webhook-url with the connection's webhook URL to stream orders.\n"
        )
        rng = random.Random(options["seed"])
        try:
            while True:
                time.sleep(options["every"])
                now = timezone.now().replace(microsecond=0)
                if options["shopify_webhook_url"]:
                    order = shopify_data.add_order(
                        created_at=now,
                        customer=rng.choice(shopify_data.customers),
                        product=rng.choice(shopify_data.products),
                    )
                    body, headers = shopify_delivery(
                        topic="orders/create", secret=secret, payload=render.shopify_order_rest(order, shopify_data)
                    )
                    self._post(options["shopify_webhook_url"], body, headers, f"Shopify order #{order.number}")
                if options["woocommerce_webhook_url"]:
                    order = woo_data.add_order(
                        created_at=now, customer=rng.choice(woo_data.customers), product=rng.choice(woo_data.products)
                    )
                    body, headers = woocommerce_delivery(
                        topic="order.created", secret=secret, source=woo.url, payload=render.woo_order(order, woo_data)
                    )
                    self._post(options["woocommerce_webhook_url"], body, headers, f"WooCommerce order {order.number}")
        except KeyboardInterrupt:
            pass
        finally:
            shopify.stop()
            woo.stop()

    def _post(self, url: str, body: bytes, headers: dict, label: str) -> None:
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=5)
            self.stdout.write(f"{label} -> webhook {response.status_code}\n")
        except httpx.HTTPError as error:
            self.stdout.write(self.style.WARNING(f"{label} -> webhook failed: {error}\n"))
