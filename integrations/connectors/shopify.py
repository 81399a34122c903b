"""Shopify: the Admin GraphQL API (cursor pagination, cost-based throttle) for syncs, and the REST-shaped JSON of
webhooks. Both map to the same canonical records, keyed by the numeric id (the tail of the GraphQL gid), which is
also the id REST webhook bodies carry.
"""

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from customers.records import CartRecord, CustomerRecord, OrderLineRecord, OrderRecord, ProductRecord
from integrations.connectors.base import (
    ConnectorError,
    HttpClient,
    Page,
    RecordError,
    isoformat_utc,
    parse_datetime,
)

API_VERSION = "2025-01"
SOURCE = "shopify"
PAGE_SIZE = 100
RESOURCES = ("customers", "products", "orders", "checkouts")

MONEY = "shopMoney { amount currencyCode }"

QUERIES = {
    "customers": """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id email phone firstName lastName locale createdAt updatedAt tags
      defaultAddress { address1 city province countryCodeV2 zip }
    }
  }
}""",
    "products": """
query Products($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id title vendor productType handle onlineStoreUrl updatedAt totalInventory
      featuredImage { url }
      variants(first: 1) { nodes { sku price } }
    }
  }
}""",
    "orders": f"""
query Orders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id name email createdAt processedAt updatedAt cancelledAt closedAt
      displayFinancialStatus displayFulfillmentStatus currencyCode discountCodes
      customer {{ id }}
      subtotalPriceSet {{ {MONEY} }} totalDiscountsSet {{ {MONEY} }} totalShippingPriceSet {{ {MONEY} }}
      totalTaxSet {{ {MONEY} }} totalPriceSet {{ {MONEY} }} totalRefundedSet {{ {MONEY} }}
      refunds {{ createdAt }}
      lineItems(first: 100) {{
        nodes {{ id title sku quantity originalUnitPriceSet {{ {MONEY} }} totalDiscountSet {{ {MONEY} }}
                product {{ id productType }} }}
      }}
    }}
  }}
}}""",
    "checkouts": f"""
query AbandonedCheckouts($first: Int!, $after: String, $query: String) {{
  abandonedCheckouts(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id abandonedCheckoutUrl createdAt updatedAt completedAt
      customer {{ id email }}
      totalPriceSet {{ {MONEY} }}
      lineItems(first: 50) {{ nodes {{ title sku quantity originalUnitPriceSet {{ {MONEY} }} product {{ id }} }} }}
    }}
  }}
}}""",
}
ROOT_FIELDS = {"customers": "customers", "products": "products", "orders": "orders", "checkouts": "abandonedCheckouts"}
COUNT_FIELDS = {"customers": "customersCount", "products": "productsCount", "orders": "ordersCount"}
# Abandoned checkouts can only be sorted and filtered by creation (AbandonedCheckoutSortKeys has no UPDATED_AT), so
# their incremental sync follows created_at; later changes to a checkout arrive by the checkouts/update webhook.
WATERMARK_FIELD = {"checkouts": ("created_at", "createdAt")}

RECONCILE_QUERY = f"""
query OrdersForReconciliation($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ id createdAt totalPriceSet {{ {MONEY} }} }}
  }}
}}"""

DISCOUNT_CREATE = """
mutation discountCodeBasicCreate($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}"""
DISCOUNT_ADD_CODES = """
mutation discountRedeemCodeBulkAdd($discountId: ID!, $codes: [DiscountRedeemCodeInput!]!) {
  discountRedeemCodeBulkAdd(discountId: $discountId, codes: $codes) {
    bulkCreation { id }
    userErrors { field code message }
  }
}"""
DISCOUNT_LOOKUP = """
query codeDiscountNodeByCode($code: String!) { codeDiscountNodeByCode(code: $code) { id } }"""

FINANCIAL_STATUS = {
    "PAID": "paid",
    "PARTIALLY_PAID": "paid",
    "PENDING": "pending",
    "AUTHORIZED": "authorized",
    "PARTIALLY_REFUNDED": "partially_refunded",
    "REFUNDED": "refunded",
    "VOIDED": "voided",
    "EXPIRED": "voided",
}


def numeric_id(value: Any) -> str:
    """``gid://shopify/Customer/123`` -> ``123`` (REST bodies already carry ``123``)."""
    text = str(value or "")
    return text.rsplit("/", 1)[-1]


def money(value: Any) -> Decimal:
    if isinstance(value, dict):
        value = (value.get("shopMoney") or value.get("shop_money") or {}).get("amount")
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal("0")
    except InvalidOperation:
        return Decimal("0")


def _nodes(connection: dict | None) -> list[dict]:
    if not connection:
        return []
    if "nodes" in connection:
        return connection["nodes"] or []
    return [edge["node"] for edge in connection.get("edges", [])]


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # REST: "vip, wholesale"
        value = value.split(",")
    return tuple(tag.strip() for tag in value or () if tag and tag.strip())


# --- GraphQL nodes -> records ----------------------------------------------------------------------------------


def customer_from_graphql(node: dict) -> CustomerRecord:
    address = node.get("defaultAddress") or {}
    return CustomerRecord(
        source=SOURCE,
        external_id=numeric_id(node["id"]),
        email=node.get("email") or "",
        phone=node.get("phone") or "",
        first_name=node.get("firstName") or "",
        last_name=node.get("lastName") or "",
        language=(node.get("locale") or "")[:10],
        tags=_tags(node.get("tags")),
        address_line=address.get("address1") or "",
        city=address.get("city") or "",
        region=address.get("province") or "",
        country=(address.get("countryCodeV2") or "")[:2],
        postcode=address.get("zip") or "",
        created_at=parse_datetime(node.get("createdAt")),
        updated_at=parse_datetime(node.get("updatedAt")),
    )


def product_from_graphql(node: dict) -> ProductRecord:
    variants = _nodes(node.get("variants"))
    first = variants[0] if variants else {}
    inventory = node.get("totalInventory")
    return ProductRecord(
        source=SOURCE,
        external_id=numeric_id(node["id"]),
        title=node.get("title") or "(untitled)",
        sku=first.get("sku") or "",
        category=node.get("productType") or "",
        vendor=node.get("vendor") or "",
        price=money(first.get("price")),
        inventory_quantity=inventory,
        is_in_stock=inventory is None or inventory > 0,
        image_url=(node.get("featuredImage") or {}).get("url") or "",
        url=node.get("onlineStoreUrl") or "",
        updated_at=parse_datetime(node.get("updatedAt")),
    )


def order_from_graphql(node: dict) -> OrderRecord:
    refunds = node.get("refunds") or []
    refunded_at = max((parse_datetime(r.get("createdAt")) for r in refunds if r.get("createdAt")), default=None)
    lines = []
    for line in _nodes(node.get("lineItems")):
        quantity = int(line.get("quantity") or 0)
        unit_price = money(line.get("originalUnitPriceSet"))
        discount = money(line.get("totalDiscountSet"))
        product = line.get("product") or {}
        lines.append(
            OrderLineRecord(
                external_id=numeric_id(line.get("id")),
                product_external_id=numeric_id(product.get("id")),
                title=line.get("title") or "",
                sku=line.get("sku") or "",
                category=product.get("productType") or "",
                quantity=max(quantity, 0),
                unit_price=unit_price,
                discount=discount,
            )
        )
    cancelled_at = parse_datetime(node.get("cancelledAt"))
    return OrderRecord(
        source=SOURCE,
        external_id=numeric_id(node["id"]),
        placed_at=parse_datetime(node["createdAt"]),
        customer_external_id=numeric_id((node.get("customer") or {}).get("id")) if node.get("customer") else "",
        email=node.get("email") or "",
        number=node.get("name") or "",
        status="cancelled" if cancelled_at else ("closed" if node.get("closedAt") else "open"),
        financial_status=FINANCIAL_STATUS.get(node.get("displayFinancialStatus") or "", "pending"),
        fulfillment_status=(node.get("displayFulfillmentStatus") or "").lower()[:20],
        currency=node.get("currencyCode") or "USD",
        subtotal=money(node.get("subtotalPriceSet")),
        discount_total=money(node.get("totalDiscountsSet")),
        discount_codes=tuple(node.get("discountCodes") or ()),
        shipping_total=money(node.get("totalShippingPriceSet")),
        tax_total=money(node.get("totalTaxSet")),
        total=money(node.get("totalPriceSet")),
        refunded_total=money(node.get("totalRefundedSet")),
        cancelled_at=cancelled_at,
        refunded_at=refunded_at,
        updated_at=parse_datetime(node.get("updatedAt")),
        lines=tuple(lines),
    )


def cart_from_graphql(node: dict) -> CartRecord:
    customer = node.get("customer") or {}
    total = node.get("totalPriceSet") or {}
    lines = tuple(
        {
            "product_external_id": numeric_id((line.get("product") or {}).get("id")),
            "sku": line.get("sku") or "",
            "title": line.get("title") or "",
            "quantity": int(line.get("quantity") or 0),
            "price": str(money(line.get("originalUnitPriceSet"))),
        }
        for line in _nodes(node.get("lineItems"))
    )
    return CartRecord(
        source=SOURCE,
        external_id=numeric_id(node["id"]),
        started_at=parse_datetime(node["createdAt"]),
        customer_external_id=numeric_id(customer.get("id")) if customer.get("id") else "",
        email=customer.get("email") or "",
        lines=lines,
        value=money(total),
        currency=(total.get("shopMoney") or {}).get("currencyCode") or "USD",
        checkout_url=node.get("abandonedCheckoutUrl") or "",
        updated_at=parse_datetime(node.get("updatedAt")),
    )


GRAPHQL_MAPPERS = {
    "customers": customer_from_graphql,
    "products": product_from_graphql,
    "orders": order_from_graphql,
    "checkouts": cart_from_graphql,
}


# --- REST webhook bodies -> records ----------------------------------------------------------------------------


def customer_from_rest(body: dict) -> CustomerRecord:
    address = body.get("default_address") or {}
    return CustomerRecord(
        source=SOURCE,
        external_id=str(body["id"]),
        email=body.get("email") or "",
        phone=body.get("phone") or "",
        first_name=body.get("first_name") or "",
        last_name=body.get("last_name") or "",
        tags=_tags(body.get("tags")),
        address_line=address.get("address1") or "",
        city=address.get("city") or "",
        region=address.get("province") or "",
        country=(address.get("country_code") or "")[:2],
        postcode=address.get("zip") or "",
        created_at=parse_datetime(body.get("created_at")),
        updated_at=parse_datetime(body.get("updated_at")),
    )


def order_from_rest(body: dict) -> OrderRecord:
    lines = tuple(
        OrderLineRecord(
            external_id=str(line.get("id") or ""),
            product_external_id=str(line.get("product_id") or ""),
            title=line.get("title") or "",
            sku=line.get("sku") or "",
            quantity=int(line.get("quantity") or 0),
            unit_price=money(line.get("price")),
            discount=money(line.get("total_discount")),
        )
        for line in body.get("line_items") or []
    )
    refunded = Decimal("0")
    refunded_at = None
    for refund in body.get("refunds") or []:
        for transaction in refund.get("transactions") or []:
            if transaction.get("kind") == "refund" and transaction.get("status", "success") == "success":
                refunded += money(transaction.get("amount"))
        refunded_at = max(filter(None, [refunded_at, parse_datetime(refund.get("created_at"))]), default=None)
    cancelled_at = parse_datetime(body.get("cancelled_at"))
    customer = body.get("customer") or {}
    shipping = (body.get("total_shipping_price_set") or {}).get("shop_money", {}).get("amount")
    return OrderRecord(
        source=SOURCE,
        external_id=str(body["id"]),
        placed_at=parse_datetime(body["created_at"]),
        customer_external_id=str(customer["id"]) if customer.get("id") else "",
        email=body.get("email") or customer.get("email") or "",
        number=body.get("name") or "",
        status="cancelled" if cancelled_at else ("closed" if body.get("closed_at") else "open"),
        financial_status=(body.get("financial_status") or "pending")[:20],
        fulfillment_status=(body.get("fulfillment_status") or "")[:20],
        currency=body.get("currency") or "USD",
        subtotal=money(body.get("subtotal_price")),
        discount_total=money(body.get("total_discounts")),
        discount_codes=tuple(code.get("code", "") for code in body.get("discount_codes") or []),
        shipping_total=money(shipping),
        tax_total=money(body.get("total_tax")),
        total=money(body.get("total_price")),
        refunded_total=refunded,
        cancelled_at=cancelled_at,
        refunded_at=refunded_at,
        updated_at=parse_datetime(body.get("updated_at")),
        lines=lines,
    )


def cart_from_rest(body: dict) -> CartRecord:
    customer = body.get("customer") or {}
    return CartRecord(
        source=SOURCE,
        external_id=str(body["id"]),
        started_at=parse_datetime(body["created_at"]),
        customer_external_id=str(customer["id"]) if customer.get("id") else "",
        email=body.get("email") or customer.get("email") or "",
        lines=tuple(
            {
                "product_external_id": str(line.get("product_id") or ""),
                "sku": line.get("sku") or "",
                "title": line.get("title") or "",
                "quantity": int(line.get("quantity") or 0),
                "price": str(money(line.get("price"))),
            }
            for line in body.get("line_items") or []
        ),
        value=money(body.get("total_price")),
        currency=body.get("currency") or "USD",
        checkout_url=body.get("abandoned_checkout_url") or "",
        updated_at=parse_datetime(body.get("updated_at")),
    )


# --- the API client --------------------------------------------------------------------------------------------


class ShopifyConnector:
    platform = SOURCE
    resources = RESOURCES
    page_size = PAGE_SIZE

    def __init__(self, *, base_url: str, access_token: str, **client_options: Any):
        self.http = HttpClient(
            base_url=base_url,
            headers={
                "X-Shopify-Access-Token": access_token,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            **client_options,
        )
        self.http.auth_message = lambda response: (  # type: ignore[method-assign]
            "Shopify refused the access token: check it was copied whole and that the app has the read_customers, "
            "read_products and read_orders scopes."
        )
        self.path = f"/admin/api/{API_VERSION}/graphql.json"

    def close(self) -> None:
        self.http.close()

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """POST a query; wait out the cost-based throttle (THROTTLED errors and a nearly empty bucket)."""
        for _ in range(10):
            response = self.http.request("POST", self.path, json={"query": query, "variables": variables or {}})
            try:
                body = response.json()
            except ValueError as error:
                raise ConnectorError("Shopify answered with something that is not JSON.", is_transient=True) from error
            throttle = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
            errors = body.get("errors") or []
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                self.http.pause(self._wait_for(throttle, needed=self._requested_cost(body)))
                continue
            if errors:
                raise ConnectorError(
                    "Shopify rejected the query: " + "; ".join(e.get("message", "") for e in errors), is_transient=False
                )
            # Slow down before the bucket runs dry rather than after.
            if throttle and throttle.get("currentlyAvailable", 1000) < self._requested_cost(body):
                self.http.pause(self._wait_for(throttle, needed=self._requested_cost(body)))
            return body.get("data") or {}
        raise ConnectorError("Shopify kept throttling the sync; it will resume later.", is_transient=True)

    @staticmethod
    def _requested_cost(body: dict) -> float:
        return float(((body.get("extensions") or {}).get("cost") or {}).get("requestedQueryCost") or 50)

    @staticmethod
    def _wait_for(throttle: dict, *, needed: float) -> float:
        available = float(throttle.get("currentlyAvailable") or 0)
        restore = float(throttle.get("restoreRate") or 50) or 50.0
        return min(max((needed - available) / restore, 0.05), 30.0)

    def create_discount_codes(self, *, title: str, codes: list[str], percent: int) -> list[str]:
        """Register single-use percentage codes: one code discount (discountCodeBasicCreate) with the first code,
        the others added to it 250 at a time (discountRedeemCodeBulkAdd). Codes the shop already has count as
        registered, so a retried registration is harmless. Returns the codes the shop now knows."""
        if not codes:
            return []
        data = self.graphql(
            DISCOUNT_CREATE,
            {
                "basicCodeDiscount": {
                    "title": title,
                    "code": codes[0],
                    "startsAt": isoformat_utc(dt.datetime.now(dt.UTC)),
                    "customerSelection": {"all": True},
                    "customerGets": {"value": {"percentage": percent / 100}, "items": {"all": True}},
                    "appliesOncePerCustomer": True,
                    "usageLimit": len(codes),
                }
            },
        )
        result = data.get("discountCodeBasicCreate") or {}
        errors = [e for e in result.get("userErrors") or [] if e.get("code") != "TAKEN"]
        if errors:
            raise ConnectorError(
                "Shopify refused the discount: " + "; ".join(e.get("message", "") for e in errors), is_transient=False
            )
        discount_id = ((result.get("codeDiscountNode") or {}).get("id")) or ""
        if not discount_id:  # the first code existed already: look its discount up to add the others to it
            found = self.graphql(DISCOUNT_LOOKUP, {"code": codes[0]}).get("codeDiscountNodeByCode") or {}
            discount_id = found.get("id") or ""
        if not discount_id:
            raise ConnectorError("Shopify did not say which discount holds the codes.", is_transient=True)
        for start in range(1, len(codes), 250):
            chunk = codes[start : start + 250]
            added = self.graphql(DISCOUNT_ADD_CODES, {"discountId": discount_id, "codes": [{"code": c} for c in chunk]})
            errors = (added.get("discountRedeemCodeBulkAdd") or {}).get("userErrors") or []
            if errors:
                raise ConnectorError(
                    "Shopify refused discount codes: " + "; ".join(e.get("message", "") for e in errors),
                    is_transient=False,
                )
        return list(codes)

    def check(self) -> str:
        data = self.graphql("query { shop { name myshopifyDomain currencyCode } }")
        shop = data.get("shop") or {}
        return shop.get("name") or shop.get("myshopifyDomain") or "Shopify store"

    @staticmethod
    def _search(resource: str, since: dt.datetime | None) -> str | None:
        search_field = WATERMARK_FIELD.get(resource, ("updated_at", "updatedAt"))[0]
        return f"{search_field}:>'{isoformat_utc(since)}'" if since else None

    def count(self, resource: str, *, since: dt.datetime | None) -> int:
        """How many records a sync will read (for the progress bar); one page's worth when the API cannot count."""
        field = COUNT_FIELDS.get(resource)
        if field is None:
            return self.page_size
        data = self.graphql(
            f"query Count($query: String) {{ {field}(query: $query) {{ count }} }}",
            {"query": self._search(resource, since)},
        )
        return int((data.get(field) or {}).get("count") or 0)

    def fetch_page(self, resource: str, *, cursor: str | None, since: dt.datetime | None) -> Page:
        data = self.graphql(
            QUERIES[resource], {"first": self.page_size, "after": cursor, "query": self._search(resource, since)}
        )
        connection = data.get(ROOT_FIELDS[resource]) or {}
        mapper = GRAPHQL_MAPPERS[resource]
        records, errors = [], []
        max_updated = None
        for node in _nodes(connection):
            if resource == "checkouts" and node.get("completedAt"):
                continue  # it became an order; nothing was abandoned
            try:
                record = mapper(node)
            except (KeyError, TypeError, ValueError) as error:
                errors.append(
                    RecordError(
                        resource=resource,
                        external_id=numeric_id(node.get("id")),
                        reason=f"unreadable record: {error!r}",
                    )
                )
                continue
            records.append(record)
            updated = parse_datetime(node.get(WATERMARK_FIELD.get(resource, ("", "updatedAt"))[1]))
            if updated and (max_updated is None or updated > max_updated):
                max_updated = updated
        page_info = connection.get("pageInfo") or {}
        return Page(
            records=records,
            errors=errors,
            max_updated_at=max_updated,
            next_cursor=page_info.get("endCursor") if page_info.get("hasNextPage") else None,
        )

    def orders_created_between(
        self, start: dt.datetime, end: dt.datetime
    ) -> Iterator[tuple[str, dt.datetime, Decimal]]:
        """(external id, created at, total) of every order created in [start, end)."""
        query = f"created_at:>='{isoformat_utc(start)}' created_at:<'{isoformat_utc(end)}'"
        cursor = None
        while True:
            data = self.graphql(RECONCILE_QUERY, {"first": 250, "after": cursor, "query": query})
            connection = data.get("orders") or {}
            for node in _nodes(connection):
                yield numeric_id(node["id"]), parse_datetime(node["createdAt"]), money(node.get("totalPriceSet"))
            page_info = connection.get("pageInfo") or {}
            if not page_info.get("hasNextPage"):
                return
            cursor = page_info.get("endCursor")

    def orders_full_between(self, start: dt.datetime, end: dt.datetime) -> Iterator[OrderRecord]:
        query = f"created_at:>='{isoformat_utc(start)}' created_at:<'{isoformat_utc(end)}'"
        cursor = None
        while True:
            data = self.graphql(QUERIES["orders"], {"first": self.page_size, "after": cursor, "query": query})
            connection = data.get("orders") or {}
            yield from (order_from_graphql(node) for node in _nodes(connection))
            page_info = connection.get("pageInfo") or {}
            if not page_info.get("hasNextPage"):
                return
            cursor = page_info.get("endCursor")
