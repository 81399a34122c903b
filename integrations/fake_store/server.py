"""Local HTTP servers that behave like the Shopify Admin GraphQL API and the WooCommerce REST API v3, for tests and
for ``manage.py fake_store``. Threaded ``http.server`` on 127.0.0.1 with a random port.

Not a GraphQL engine: the Shopify fake recognises the root field of a query (``customers``, ``orders``,
``abandonedCheckouts``, ``ordersCount``...), applies ``first`` / ``after`` / ``query`` (``updated_at:>'...'``,
``created_at:>='...'``) and answers with nodes carrying every field our connector selects, plus the
``extensions.cost.throttleStatus`` of the leaky-bucket rate limit.

Switches for failure tests: ``inject(status, after=n, times=k, retry_after=s)`` makes the k requests after the next n
fail with ``status`` (a 429 carries ``Retry-After``). ``requests`` logs every API call.
"""

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from integrations.connectors.base import parse_datetime
from integrations.fake_store import render
from integrations.fake_store.data import FakeCatalogue

SHOPIFY_GRAPHQL_PATH = re.compile(r"^/admin/api/[0-9]{4}-[0-9]{2}/graphql\.json$")
SEARCH_TERM = re.compile(r"(updated_at|created_at):(>=|<=|>|<)'([^']+)'")
ROOT_FIELD = re.compile(
    r"\b(customersCount|productsCount|ordersCount|abandonedCheckouts|customers|products|"
    r"orders|shop)\b\s*[({]"
)


@dataclass
class Fault:
    status: int
    after: int
    times: int
    retry_after: float | None


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self.server.owner.handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.server.owner.handle(self, "POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "FakeStoreServer"


class FakeStoreServer:
    platform = ""

    def __init__(self, catalogue: FakeCatalogue, *, host: str = "127.0.0.1", port: int = 0):
        self.catalogue = catalogue
        self.requests: list[dict] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.httpd = _Server((host, port), _Handler)
        self.httpd.owner = self
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeStoreServer":
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-{self.platform}", daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "FakeStoreServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def inject(self, status: int, *, after: int = 0, times: int = 1, retry_after: float | None = None) -> None:
        """Make ``times`` API requests fail with ``status``, after ``after`` more requests have succeeded."""
        with self.lock:
            self.faults.append(Fault(status=status, after=after, times=times, retry_after=retry_after))

    def _take_fault(self) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.after > 0:
                    fault.after -= 1
                    return None
                if fault.times > 0:
                    fault.times -= 1
                    return fault
            self.faults = [f for f in self.faults if f.times > 0]
            return None

    def handle(self, handler: _Handler, method: str) -> None:
        parsed = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        entry: dict[str, Any] = {"method": method, "path": parsed.path, "params": parse_qs(parsed.query)}
        if raw:
            try:
                entry["body"] = json.loads(raw)
            except ValueError:
                entry["body"] = raw.decode(errors="replace")
        if not self.is_authorised(handler):
            entry["status"] = 401
            self.requests.append(entry)
            status, body = self.unauthorised()
            handler._send(status, body)
            return
        fault = self._take_fault()
        if fault is not None:
            entry["status"] = fault.status
            self.requests.append(entry)
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            message = (
                "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
            )
            handler._send(
                fault.status, {"errors": message if fault.status == 429 else "Internal Server Error"}, headers
            )
            return
        try:
            status, body, headers = self.route(method, parsed.path, parse_qs(parsed.query), entry.get("body"))
        except Exception as error:  # noqa: BLE001 - a fake must answer, not hang the client
            status, body, headers = 500, {"errors": f"fake store error: {error!r}"}, {}
        entry["status"] = status
        self.requests.append(entry)
        handler._send(status, body, headers)

    def is_authorised(self, handler: _Handler) -> bool:
        raise NotImplementedError

    def unauthorised(self) -> tuple[int, Any]:
        raise NotImplementedError

    def route(self, method: str, path: str, params: dict, body: Any) -> tuple[int, Any, dict]:
        raise NotImplementedError


def _encode_cursor(values: tuple) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def _decode_cursor(cursor: str) -> tuple:
    return tuple(json.loads(base64.urlsafe_b64decode(cursor.encode())))


class FakeShopify(FakeStoreServer):
    platform = "shopify"

    def __init__(
        self,
        catalogue: FakeCatalogue,
        *,
        access_token: str = "shpat_fake_token",
        shop: str = "fake-shop",
        bucket_size: float = 1000.0,
        restore_rate: float = 50.0,
        **kwargs: Any,
    ):
        super().__init__(catalogue, **kwargs)
        self.access_token = access_token
        self.shop = shop
        self.bucket_size = bucket_size
        self.restore_rate = restore_rate
        self.available = bucket_size
        self.bucket_at = time.monotonic()
        self.discounts: dict[str, dict] = {}

    @property
    def shop_domain(self) -> str:
        return f"{self.shop}.myshopify.com"

    def is_authorised(self, handler: _Handler) -> bool:
        return handler.headers.get("X-Shopify-Access-Token") == self.access_token

    def unauthorised(self) -> tuple[int, Any]:
        return 401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}

    def _throttle(self, cost: float) -> tuple[bool, dict]:
        with self.lock:
            now = time.monotonic()
            self.available = min(self.bucket_size, self.available + (now - self.bucket_at) * self.restore_rate)
            self.bucket_at = now
            allowed = self.available >= cost
            if allowed:
                self.available -= cost
            return allowed, {
                "maximumAvailable": self.bucket_size,
                "currentlyAvailable": int(self.available),
                "restoreRate": self.restore_rate,
            }

    def route(self, method: str, path: str, params: dict, body: Any) -> tuple[int, Any, dict]:
        if method != "POST" or not SHOPIFY_GRAPHQL_PATH.match(path):
            return 404, {"errors": "Not Found"}, {}
        if not isinstance(body, dict) or "query" not in body:
            return 400, {"errors": {"query": "Required parameter missing or invalid"}}, {}
        query, variables = body["query"], body.get("variables") or {}
        discounts = self._discounts(query, variables)
        if discounts is not None:
            return 200, {"data": discounts}, {}
        match = ROOT_FIELD.search(query.split("{", 1)[1] if "{" in query else query)
        if not match:
            return 200, {"errors": [{"message": "Field doesn't exist on type 'QueryRoot'"}]}, {}
        root = match.group(1)
        if root == "abandonedCheckouts" and re.search(r"sortKey:\s*UPDATED_AT", query):
            invalid = "Argument 'sortKey' on Field 'abandonedCheckouts' has an invalid value (UPDATED_AT)."
            return 200, {"errors": [{"message": invalid}]}, {}
        first = int(variables.get("first") or 50)
        cost = float(first + 2) if not root.endswith("Count") and root != "shop" else 1.0
        allowed, throttle = self._throttle(cost)
        extensions = {
            "cost": {
                "requestedQueryCost": cost,
                "actualQueryCost": cost if allowed else None,
                "throttleStatus": throttle,
            }
        }
        if not allowed:
            return (
                200,
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": extensions,
                },
                {},
            )
        if root == "shop":
            data = {"shop": {"name": "Fake Outdoor Shop", "myshopifyDomain": self.shop_domain, "currencyCode": "USD"}}
        elif root.endswith("Count"):
            items = self._filtered(root.removesuffix("Count"), variables.get("query"))
            data = {root: {"count": len(items), "precision": "EXACT"}}
        else:
            data = {root: self._page(root, query, first, variables.get("after"), variables.get("query"))}
        return 200, {"data": data, "extensions": extensions}, {}

    def _discounts(self, query: str, variables: dict) -> dict | None:
        """Code discounts, as the Admin API takes them: discountCodeBasicCreate (one discount, one code; a code
        the shop has already is TAKEN), discountRedeemCodeBulkAdd (up to 250 more codes) and the lookup by code.
        Kept in ``self.discounts`` ({gid: {"title", "percentage", "codes": [...]}}) for tests to read."""
        with self.lock:
            known = {code: gid for gid, d in self.discounts.items() for code in d["codes"]}
            if "discountCodeBasicCreate(" in query:
                given = variables.get("basicCodeDiscount") or {}
                code, title = str(given.get("code") or ""), str(given.get("title") or "")
                percentage = ((given.get("customerGets") or {}).get("value") or {}).get("percentage")
                if not code or not title or percentage is None:
                    error = {"field": ["basicCodeDiscount"], "code": "BLANK", "message": "Code, title and value needed"}
                    return {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [error]}}
                if code in known:
                    error = {"field": ["basicCodeDiscount", "code"], "code": "TAKEN", "message": "Code must be unique."}
                    return {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [error]}}
                gid = f"gid://shopify/DiscountCodeNode/{len(self.discounts) + 1}"
                self.discounts[gid] = {"title": title, "percentage": percentage, "codes": [code]}
                return {"discountCodeBasicCreate": {"codeDiscountNode": {"id": gid}, "userErrors": []}}
            if "discountRedeemCodeBulkAdd(" in query:
                gid, codes = variables.get("discountId"), [c.get("code") for c in variables.get("codes") or []]
                if gid not in self.discounts or len(codes) > 250:
                    error = {"field": ["discountId"], "code": "INVALID", "message": "Discount not found or >250 codes"}
                    return {"discountRedeemCodeBulkAdd": {"bulkCreation": None, "userErrors": [error]}}
                self.discounts[gid]["codes"].extend(c for c in codes if c and c not in known)
                return {"discountRedeemCodeBulkAdd": {"bulkCreation": {"id": f"{gid}/bulk"}, "userErrors": []}}
            if "codeDiscountNodeByCode(" in query:
                gid = known.get(variables.get("code"))
                return {"codeDiscountNodeByCode": {"id": gid} if gid else None}
        return None

    def _items(self, root: str) -> list:
        return {
            "customers": self.catalogue.customers,
            "products": self.catalogue.products,
            "orders": self.catalogue.orders,
            "abandonedCheckouts": self.catalogue.checkouts,
        }[root]

    def _filtered(self, root: str, search: str | None) -> list:
        with self.catalogue.lock:
            items = list(self._items(root))
        for name, operator, value in SEARCH_TERM.findall(search or ""):
            bound = parse_datetime(value)
            attribute = "updated_at" if name == "updated_at" else "created_at"
            compare = {
                ">": lambda a, b: a > b,
                ">=": lambda a, b: a >= b,
                "<": lambda a, b: a < b,
                "<=": lambda a, b: a <= b,
            }[operator]
            items = [item for item in items if compare(getattr(item, attribute), bound)]
        return items

    def _page(self, root: str, query: str, first: int, after: str | None, search: str | None) -> dict:
        first = min(first, 250)
        attribute = "created_at" if "sortKey: CREATED_AT" in query else "updated_at"
        items = sorted(self._filtered(root, search), key=lambda item: (getattr(item, attribute), item.id))
        if after:
            stamp, last_id = _decode_cursor(after)
            items = [item for item in items if (render.iso(getattr(item, attribute)), item.id) > (stamp, last_id)]
        page, has_next = items[:first], len(items) > first
        host = self.shop_domain
        renderers = {
            "customers": render.shopify_customer_node,
            "products": lambda item: render.shopify_product_node(item, host),
            "orders": lambda item: render.shopify_order_node(item, self.catalogue),
            "abandonedCheckouts": lambda item: render.shopify_checkout_node(item, self.catalogue, host),
        }
        end = _encode_cursor((render.iso(getattr(page[-1], attribute)), page[-1].id)) if page else None
        return {
            "pageInfo": {
                "hasNextPage": has_next,
                "endCursor": end,
                "hasPreviousPage": bool(after),
                "startCursor": None,
            },
            "nodes": [renderers[root](item) for item in page],
        }


class FakeWooCommerce(FakeStoreServer):
    platform = "woocommerce"

    def __init__(
        self,
        catalogue: FakeCatalogue,
        *,
        consumer_key: str = "ck_fake_key",
        consumer_secret: str = "cs_fake_secret",
        **kwargs: Any,
    ):
        super().__init__(catalogue, **kwargs)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.coupons: dict[str, dict] = {}

    def is_authorised(self, handler: _Handler) -> bool:
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return key == self.consumer_key and secret == self.consumer_secret

    def unauthorised(self) -> tuple[int, Any]:
        return 401, {
            "code": "woocommerce_rest_authentication_error",
            "message": "Consumer key is invalid.",
            "data": {"status": 401},
        }

    def _coupons_batch(self, body: Any) -> tuple[int, Any, dict]:
        """POST /coupons/batch: up to 100 coupons to create; a code the store has already answers with an error
        item, as WooCommerce does. Kept in ``self.coupons`` ({code: coupon}) for tests to read."""
        creates = (body or {}).get("create") if isinstance(body, dict) else None
        if not isinstance(creates, list) or len(creates) > 100:
            return 400, {"code": "rest_invalid_param", "message": "Invalid batch", "data": {"status": 400}}, {}
        answers = []
        with self.lock:
            for coupon in creates:
                code = str((coupon or {}).get("code") or "").lower()  # WooCommerce stores coupon codes in lower case
                if not code:
                    answers.append(
                        {
                            "id": 0,
                            "error": {
                                "code": "woocommerce_rest_empty_coupon_code",
                                "message": "The coupon code cannot be empty.",
                            },
                        }
                    )
                elif code in self.coupons:
                    answers.append(
                        {
                            "id": 0,
                            "error": {
                                "code": "woocommerce_rest_coupon_code_already_exists",
                                "message": "The coupon code already exists",
                            },
                        }
                    )
                else:
                    self.coupons[code] = {"id": len(self.coupons) + 1, **coupon, "code": code}
                    answers.append(self.coupons[code])
        return 200, {"create": answers, "update": [], "delete": []}, {}

    def route(self, method: str, path: str, params: dict, body: Any) -> tuple[int, Any, dict]:
        if method == "POST" and re.match(r"^/wp-json/wc/v3/coupons/batch/?$", path):
            return self._coupons_batch(body)
        match = re.match(r"^/wp-json/wc/v3/(customers|products|orders)/?$", path)
        if method != "GET" or not match:
            return (
                404,
                {
                    "code": "rest_no_route",
                    "message": "No route was found matching the URL and request method.",
                    "data": {"status": 404},
                },
                {},
            )
        resource = match.group(1)

        def one(name: str, default: str = "") -> str:
            return (params.get(name) or [default])[0]

        per_page = int(one("per_page", "10"))
        page = int(one("page", "1"))
        if not 1 <= per_page <= 100:
            return (
                400,
                {
                    "code": "rest_invalid_param",
                    "message": "Invalid parameter(s): per_page",
                    "data": {
                        "status": 400,
                        "params": {"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
                    },
                },
                {},
            )
        with self.catalogue.lock:
            items = list(
                {
                    "customers": self.catalogue.customers,
                    "products": self.catalogue.products,
                    "orders": self.catalogue.orders,
                }[resource]
            )
        # The customers endpoint has no modified_after / after / before filters in WooCommerce: ignore them there.
        if resource != "customers":
            if one("modified_after"):
                bound = parse_datetime(one("modified_after"))
                items = [item for item in items if item.updated_at > bound]
            if one("after"):
                bound = parse_datetime(one("after"))
                items = [item for item in items if item.created_at > bound]
            if one("before"):
                bound = parse_datetime(one("before"))
                items = [item for item in items if item.created_at < bound]
        items.sort(key=lambda item: item.id, reverse=one("order", "desc") == "desc")
        total = len(items)
        total_pages = max((total + per_page - 1) // per_page, 1) if total else 0
        chunk = items[(page - 1) * per_page : page * per_page]
        site = self.url
        renderers = {
            "customers": render.woo_customer,
            "products": lambda item: render.woo_product(item, site),
            "orders": lambda item: render.woo_order(item, self.catalogue),
        }
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(total_pages)}
        return 200, [renderers[resource](item) for item in chunk], headers
