"""`manage.py fake_store` runs both fake stores; a newcomer can point a connection at the addresses it prints."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from integrations.connectors.shopify import ShopifyConnector
from integrations.connectors.woocommerce import WooCommerceConnector

ROOT = Path(__file__).resolve().parents[2]


def test_fake_store_command_serves_both_platforms():
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "fake_store",
            "--shopify-port",
            "0",
            "--woocommerce-port",
            "0",
            "--customers",
            "12",
            "--orders",
            "40",
            "--products",
            "5",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings"},
    )
    try:
        output = ""
        deadline = time.monotonic() + 30
        while "orders in each store" not in output:
            assert time.monotonic() < deadline and process.poll() is None, output
            output += process.stdout.readline()
        shopify_url, woo_url = re.findall(r"address: (http://127\.0\.0\.1:\d+)", output)
        token = re.search(r"access token: (\S+)", output).group(1)
        key = re.search(r"consumer key: (\S+)", output).group(1)
        secret = re.search(r"consumer secret: (\S+)", output).group(1)

        shopify = ShopifyConnector(base_url=shopify_url, access_token=token)
        woo = WooCommerceConnector(base_url=woo_url, consumer_key=key, consumer_secret=secret)

        assert shopify.check() == "Fake Outdoor Shop"
        assert shopify.count("orders", since=None) == 40
        assert woo.count("customers", since=None) == 12
    finally:
        process.terminate()
        process.wait(timeout=10)
