"""WooCommerce REST API v3 (/wp-json/wc/v3): consumer key and secret (HTTP Basic over HTTPS), page/per_page
pagination with X-WP-Total / X-WP-TotalPages, incremental sync by ``modified_after`` with ``dates_are_gmt=true``.

Pages are read in id order: a record modified during the sync keeps its place, so nothing is skipped; the
customers endpoint has no ``modified_after`` filter, so customers are filtered by ``date_modified_gmt`` here.
"""

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from customers.records import CustomerRecord, OrderLineRecord, OrderRecord, ProductRecord
from integrations.connectors.base import ConnectorError, HttpClient, Page, RecordError, parse_datetime

SOURCE = "woocommerce"
PAGE_SIZE = 100
RESOURCES = ("customers", "products", "orders")
API_PREFIX = "/wp-json/wc/v3"

STATUS = {  # WooCommerce order status -> (order status, financial status)
    "pending": ("open", "pending"),
    "on-hold": ("open", "pending"),
    "processing": ("open", "paid"),
    "completed": ("closed", "paid"),
    "cancelled": ("cancelled", "voided"),
    "refunded": ("closed", "refunded"),
    "failed": ("cancelled", "voided"),
    "checkout-draft": ("open", "pending"),
}


def decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal("0")
    except InvalidOperation:
        return Decimal("0")


def gmt(body: dict, name: str) -> dt.datetime | None:
    """WooCommerce sends ``date_x_gmt`` without an offset; it is UTC."""
    return parse_datetime(body.get(f"{name}_gmt")) or parse_datetime(body.get(name))


def customer_from_rest(body: dict) -> CustomerRecord:
    billing = body.get("billing") or {}
    return CustomerRecord(
        source=SOURCE,
        external_id=str(body["id"]),
        email=body.get("email") or billing.get("email") or "",
        phone=billing.get("phone") or "",
        first_name=body.get("first_name") or billing.get("first_name") or "",
        last_name=body.get("last_name") or billing.get("last_name") or "",
        address_line=billing.get("address_1") or "",
        city=billing.get("city") or "",
        region=billing.get("state") or "",
        country=(billing.get("country") or "")[:2],
        postcode=billing.get("postcode") or "",
        created_at=gmt(body, "date_created"),
        updated_at=gmt(body, "date_modified") or gmt(body, "date_created"),
    )


def product_from_rest(body: dict) -> ProductRecord:
    categories = body.get("categories") or []
    images = body.get("images") or []
    stock = body.get("stock_quantity")
    return ProductRecord(
        source=SOURCE,
        external_id=str(body["id"]),
        title=body.get("name") or "(untitled)",
        sku=body.get("sku") or "",
        category=categories[0].get("name", "") if categories else "",
        price=decimal(body.get("price")),
        inventory_quantity=stock,
        is_in_stock=body.get("stock_status", "instock") != "outofstock",
        image_url=images[0].get("src", "") if images else "",
        url=body.get("permalink") or "",
        updated_at=gmt(body, "date_modified"),
    )


def order_from_rest(body: dict) -> OrderRecord:
    status, financial = STATUS.get(body.get("status") or "", ("open", "pending"))
    billing = body.get("billing") or {}
    refunds = body.get("refunds") or []
    refunded = sum((abs(decimal(refund.get("total"))) for refund in refunds), Decimal("0"))
    if refunded and financial == "paid":
        financial = "partially_refunded"
    lines = tuple(
        OrderLineRecord(
            external_id=str(line.get("id") or ""),
            product_external_id=str(line.get("product_id") or ""),
            title=line.get("name") or "",
            sku=line.get("sku") or "",
            quantity=int(line.get("quantity") or 0),
            unit_price=decimal(line.get("price")),
            discount=max(decimal(line.get("subtotal")) - decimal(line.get("total")), Decimal("0")),
            total=decimal(line.get("total")),
        )
        for line in body.get("line_items") or []
    )
    total = decimal(body.get("total"))
    tax = decimal(body.get("total_tax"))
    shipping = decimal(body.get("shipping_total"))
    discount = decimal(body.get("discount_total"))
    modified = gmt(body, "date_modified")
    customer_id = body.get("customer_id") or 0
    return OrderRecord(
        source=SOURCE,
        external_id=str(body["id"]),
        placed_at=gmt(body, "date_created"),
        customer_external_id=str(customer_id) if customer_id else "",
        email=billing.get("email") or "",
        number=str(body.get("number") or body["id"]),
        status=status,
        financial_status=financial,
        fulfillment_status="fulfilled" if body.get("status") == "completed" else "",
        currency=body.get("currency") or "USD",
        subtotal=sum((decimal(line.get("subtotal")) for line in body.get("line_items") or []), Decimal("0")),
        discount_total=discount,
        discount_codes=tuple(c.get("code", "") for c in body.get("coupon_lines") or []),
        shipping_total=shipping,
        tax_total=tax,
        total=total,
        refunded_total=refunded,
        cancelled_at=modified if status == "cancelled" else None,
        refunded_at=modified if refunded else None,
        updated_at=modified,
        lines=lines,
    )


MAPPERS = {"customers": customer_from_rest, "products": product_from_rest, "orders": order_from_rest}


class WooCommerceConnector:
    platform = SOURCE
    resources = RESOURCES
    page_size = PAGE_SIZE

    def __init__(self, *, base_url: str, consumer_key: str, consumer_secret: str, **client_options: Any):
        self.http = HttpClient(
            base_url=base_url,
            auth=(consumer_key, consumer_secret),
            headers={"Accept": "application/json"},
            **client_options,
        )
        self.http.auth_message = lambda response: (  # type: ignore[method-assign]
            "WooCommerce refused the consumer key and secret: check both were copied whole and the key has Read "
            "permission (WooCommerce > Settings > Advanced > REST API)."
        )

    def close(self) -> None:
        self.http.close()

    def _get(self, resource: str, params: dict) -> tuple[list[dict], int, int]:
        response = self.http.request("GET", f"{API_PREFIX}/{resource}", params=params)
        try:
            body = response.json()
        except ValueError as error:
            raise ConnectorError(
                "WooCommerce answered with something that is not JSON: is this a WordPress site?", is_transient=False
            ) from error
        if not isinstance(body, list):
            raise ConnectorError(f"WooCommerce answered {resource} with an unexpected shape.", is_transient=False)
        total = int(response.headers.get("X-WP-Total") or len(body))
        pages = int(response.headers.get("X-WP-TotalPages") or 1)
        return body, total, pages

    @staticmethod
    def _params(resource: str, since: dt.datetime | None) -> dict:
        params: dict[str, Any] = {"orderby": "id", "order": "asc"}
        if since and resource != "customers":
            params.update(modified_after=since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"), dates_are_gmt="true")
        return params

    def create_discount_codes(self, *, title: str, codes: list[str], percent: int) -> list[str]:
        """Register single-use percentage coupons through POST /coupons/batch (100 per request). A coupon the
        store already has counts as registered, so a retried registration is harmless."""
        created: list[str] = []
        for start in range(0, len(codes), 100):
            chunk = codes[start : start + 100]
            body = {
                "create": [
                    {
                        "code": code,
                        "discount_type": "percent",
                        "amount": str(percent),
                        "usage_limit": 1,
                        "individual_use": True,
                        "description": title,
                    }
                    for code in chunk
                ]
            }
            response = self.http.request("POST", f"{API_PREFIX}/coupons/batch", json=body)
            try:
                answers = response.json().get("create") or []
            except (ValueError, AttributeError) as error:
                raise ConnectorError(
                    "WooCommerce answered the coupons with something unexpected.", is_transient=True
                ) from error
            for code, answer in zip(chunk, answers, strict=False):
                problem = (answer or {}).get("error") or {}
                if problem and problem.get("code") != "woocommerce_rest_coupon_code_already_exists":
                    raise ConnectorError(
                        f"WooCommerce refused coupon {code}: {problem.get('message', '')}", is_transient=False
                    )
                created.append(code)
        return created

    def check(self) -> str:
        self._get("orders", {"per_page": 1})
        return "WooCommerce store"

    def count(self, resource: str, *, since: dt.datetime | None) -> int:
        _, total, _ = self._get(resource, {**self._params(resource, since), "per_page": 1, "page": 1})
        return total

    def fetch_page(self, resource: str, *, cursor: str | None, since: dt.datetime | None) -> Page:
        page = int(cursor or 1)
        rows, _, total_pages = self._get(
            resource, {**self._params(resource, since), "per_page": self.page_size, "page": page}
        )
        records, errors = [], []
        max_updated = None
        for row in rows:
            updated = gmt(row, "date_modified") or gmt(row, "date_created")
            if resource == "customers" and since and updated and updated <= since:
                continue
            try:
                records.append(MAPPERS[resource](row))
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                errors.append(
                    RecordError(
                        resource=resource, external_id=str(row.get("id", "")), reason=f"unreadable record: {error!r}"
                    )
                )
                continue
            if updated and (max_updated is None or updated > max_updated):
                max_updated = updated
        return Page(
            records=records,
            errors=errors,
            max_updated_at=max_updated,
            total_pages=total_pages,
            next_cursor=str(page + 1) if page < total_pages and rows else None,
        )

    def _orders_between(self, start: dt.datetime, end: dt.datetime) -> Iterator[dict]:
        page = 1
        while True:
            rows, _, total_pages = self._get(
                "orders",
                {
                    # ``after`` is exclusive: step back a second so an order at exactly ``start`` is included.
                    "after": (start - dt.timedelta(seconds=1)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "before": end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "dates_are_gmt": "true",
                    "per_page": 100,
                    "page": page,
                    "orderby": "id",
                    "order": "asc",
                    "status": "any",
                },
            )
            yield from rows
            if page >= total_pages or not rows:
                return
            page += 1

    def orders_created_between(
        self, start: dt.datetime, end: dt.datetime
    ) -> Iterator[tuple[str, dt.datetime, Decimal]]:
        for row in self._orders_between(start, end):
            yield str(row["id"]), gmt(row, "date_created"), decimal(row.get("total"))

    def orders_full_between(self, start: dt.datetime, end: dt.datetime) -> Iterator[OrderRecord]:
        for row in self._orders_between(start, end):
            yield order_from_rest(row)
