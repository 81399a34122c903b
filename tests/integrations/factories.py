import factory

from integrations import crypto
from integrations.models import StoreConnection, SyncRun
from tests.factories import ScopedFactory, WorkspaceFactory


class StoreConnectionFactory(ScopedFactory):
    class Meta:
        model = StoreConnection

    workspace = factory.SubFactory(WorkspaceFactory)
    platform = "shopify"
    name = factory.Sequence(lambda n: f"Shop {n}")
    base_url = factory.Sequence(lambda n: f"https://shop-{n}.myshopify.com")
    credentials_encrypted = factory.LazyFunction(lambda: crypto.encrypt_json({"access_token": "shpat_x"}))
    webhook_secret_encrypted = factory.LazyFunction(lambda: crypto.encrypt_text("hook-secret"))


class SyncRunFactory(ScopedFactory):
    class Meta:
        model = SyncRun

    connection = factory.SubFactory(StoreConnectionFactory)
    workspace = factory.SelfAttribute("connection.workspace")
    kind = "full"
    status = "done"
