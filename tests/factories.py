"""factory_boy factories. Rows are created with scopes disabled (a factory is test set-up, not product code);
the code under test still runs inside its workspace scope."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone
from django_scopes import scopes_disabled

from crm.models import Membership, Role, User, Workspace
from customers.models import Cart, Customer, CustomerTag, Event, Note, Order, OrderLine, Product, Source


class ScopedFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with scopes_disabled():
            return super()._create(model_class, *args, **kwargs)


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Store {n}")
    slug = factory.Sequence(lambda n: f"store-{n}")
    timezone = "UTC"
    currency = "USD"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class MembershipFactory(ScopedFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class CustomerFactory(ScopedFactory):
    class Meta:
        model = Customer

    workspace = factory.SubFactory(WorkspaceFactory)
    source = Source.MANUAL
    external_id = factory.Sequence(lambda n: f"cust-{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"customer{n}@example.org")
    country = "US"


class CustomerTagFactory(ScopedFactory):
    class Meta:
        model = CustomerTag

    customer = factory.SubFactory(CustomerFactory)
    workspace = factory.SelfAttribute("customer.workspace")
    name = "vip"


class ProductFactory(ScopedFactory):
    class Meta:
        model = Product

    workspace = factory.SubFactory(WorkspaceFactory)
    source = Source.MANUAL
    external_id = factory.Sequence(lambda n: f"prod-{n}")
    title = factory.Sequence(lambda n: f"Product {n}")
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    category = "Apparel"
    price = Decimal("25.00")


class OrderFactory(ScopedFactory):
    class Meta:
        model = Order

    workspace = factory.SubFactory(WorkspaceFactory)
    customer = factory.SubFactory(CustomerFactory, workspace=factory.SelfAttribute("..workspace"))
    source = Source.MANUAL
    external_id = factory.Sequence(lambda n: f"order-{n}")
    number = factory.Sequence(lambda n: f"#{1000 + n}")
    total = Decimal("50.00")
    subtotal = Decimal("50.00")
    net_total = factory.SelfAttribute("total")
    placed_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=3))


class OrderLineFactory(ScopedFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    workspace = factory.SelfAttribute("order.workspace")
    customer = factory.SelfAttribute("order.customer")
    placed_at = factory.SelfAttribute("order.placed_at")
    is_order_cancelled = factory.LazyAttribute(lambda line: line.order.status == "cancelled")
    title = "Line item"
    quantity = 1
    unit_price = Decimal("50.00")
    total = Decimal("50.00")


class CartFactory(ScopedFactory):
    class Meta:
        model = Cart

    workspace = factory.SubFactory(WorkspaceFactory)
    customer = factory.SubFactory(CustomerFactory, workspace=factory.SelfAttribute("..workspace"))
    external_id = factory.Sequence(lambda n: f"cart-{n}")
    value = Decimal("40.00")
    started_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=3))
    last_activity_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=2))


class NoteFactory(ScopedFactory):
    class Meta:
        model = Note

    customer = factory.SubFactory(CustomerFactory)
    workspace = factory.SelfAttribute("customer.workspace")
    body = "Called about a late parcel."


class EventFactory(ScopedFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    workspace = factory.SelfAttribute("customer.workspace")
    type = "product_viewed"
    occurred_at = factory.LazyFunction(timezone.now)
    properties = factory.LazyFunction(dict)
