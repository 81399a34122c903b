"""The fake catalogue in the platforms' own formats, following their public documentation:
Shopify Admin GraphQL nodes (gid ids, MoneyBag ``shopMoney``), Shopify REST webhook bodies, WooCommerce REST v3."""

import datetime as dt
from decimal import Decimal

from integrations.fake_store.data import FakeCatalogue, FakeCheckout, FakeCustomer, FakeOrder, FakeProduct, money


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def wc_gmt(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else None


def gid(kind: str, value: int) -> str:
    return f"gid://shopify/{kind}/{value}"


def money_bag(amount: Decimal, currency: str = "USD") -> dict:
    return {"shopMoney": {"amount": money(amount), "currencyCode": currency}}


def rest_money_set(amount: Decimal, currency: str = "USD") -> dict:
    value = {"amount": money(amount), "currency_code": currency}
    return {"shop_money": value, "presentment_money": value}


# --- Shopify GraphQL -------------------------------------------------------------------------------------------


def shopify_customer_node(customer: FakeCustomer) -> dict:
    return {
        "id": gid("Customer", customer.id),
        "email": customer.email,
        "phone": customer.phone,
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "locale": "en",
        "createdAt": iso(customer.created_at),
        "updatedAt": iso(customer.updated_at),
        "tags": customer.tags,
        "defaultAddress": {
            "address1": customer.address1,
            "city": customer.city,
            "province": customer.province,
            "countryCodeV2": customer.country,
            "zip": customer.zip,
        },
        "emailMarketingConsent": {
            "marketingState": "SUBSCRIBED" if customer.is_subscribed else "NOT_SUBSCRIBED",
            "marketingOptInLevel": "SINGLE_OPT_IN",
            "consentUpdatedAt": iso(customer.created_at),
        },
    }


def shopify_product_node(product: FakeProduct, shop_host: str) -> dict:
    return {
        "id": gid("Product", product.id),
        "title": product.title,
        "vendor": product.vendor,
        "productType": product.category,
        "handle": product.handle,
        "onlineStoreUrl": f"https://{shop_host}/products/{product.handle}",
        "updatedAt": iso(product.updated_at),
        "totalInventory": product.inventory,
        "featuredImage": None,
        "variants": {"nodes": [{"sku": product.sku, "price": money(product.price)}]},
    }


def _financial(order: FakeOrder) -> str:
    if order.refunded >= order.total and order.refunded:
        return "REFUNDED"
    return "PARTIALLY_REFUNDED" if order.refunded else "PAID"


def shopify_order_node(order: FakeOrder, catalogue: FakeCatalogue) -> dict:
    return {
        "id": gid("Order", order.id),
        "name": f"#{order.number}",
        "email": order.email,
        "createdAt": iso(order.created_at),
        "processedAt": iso(order.created_at),
        "updatedAt": iso(order.updated_at),
        "cancelledAt": iso(order.cancelled_at),
        "closedAt": iso(order.updated_at) if order.is_fulfilled else None,
        "displayFinancialStatus": "VOIDED" if order.cancelled_at else _financial(order),
        "displayFulfillmentStatus": "FULFILLED" if order.is_fulfilled else "UNFULFILLED",
        "currencyCode": order.currency,
        "discountCodes": [order.discount_code] if order.discount_code else [],
        "customer": {"id": gid("Customer", order.customer_id)} if order.customer_id else None,
        "subtotalPriceSet": money_bag(order.subtotal),
        "totalDiscountsSet": money_bag(order.discount),
        "totalShippingPriceSet": money_bag(order.shipping),
        "totalTaxSet": money_bag(order.tax),
        "totalPriceSet": money_bag(order.total),
        "totalRefundedSet": money_bag(order.refunded),
        "refunds": [{"createdAt": iso(order.refunded_at)}] if order.refunded else [],
        "lineItems": {
            "nodes": [
                {
                    "id": gid("LineItem", line.id),
                    "title": line.title,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "originalUnitPriceSet": money_bag(line.price),
                    "totalDiscountSet": money_bag(Decimal("0")),
                    "product": {"id": gid("Product", line.product_id), "productType": line.category},
                }
                for line in order.lines
            ]
        },
    }


def shopify_checkout_node(checkout: FakeCheckout, catalogue: FakeCatalogue, shop_host: str) -> dict:
    customer = catalogue.customer(checkout.customer_id)
    return {
        "id": gid("AbandonedCheckout", checkout.id),
        "abandonedCheckoutUrl": f"https://{shop_host}/checkouts/{checkout.token}/recover",
        "createdAt": iso(checkout.created_at),
        "updatedAt": iso(checkout.updated_at),
        "completedAt": iso(checkout.completed_at),
        "customer": {"id": gid("Customer", customer.id), "email": customer.email} if customer else None,
        "totalPriceSet": money_bag(checkout.total, checkout.currency),
        "lineItems": {
            "nodes": [
                {
                    "title": line.title,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "originalUnitPriceSet": money_bag(line.price),
                    "product": {"id": gid("Product", line.product_id)},
                }
                for line in checkout.lines
            ]
        },
    }


# --- Shopify REST (webhook bodies) -----------------------------------------------------------------------------


def shopify_customer_rest(customer: FakeCustomer) -> dict:
    return {
        "id": customer.id,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "phone": customer.phone,
        "created_at": iso(customer.created_at),
        "updated_at": iso(customer.updated_at),
        "tags": ", ".join(customer.tags),
        "state": "enabled",
        "currency": "USD",
        "admin_graphql_api_id": gid("Customer", customer.id),
        "default_address": {
            "address1": customer.address1,
            "city": customer.city,
            "province": customer.province,
            "country_code": customer.country,
            "zip": customer.zip,
            "default": True,
        },
        "email_marketing_consent": {
            "state": "subscribed" if customer.is_subscribed else "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": iso(customer.created_at),
        },
    }


def shopify_order_rest(order: FakeOrder, catalogue: FakeCatalogue) -> dict:
    customer = catalogue.customer(order.customer_id)
    return {
        "id": order.id,
        "admin_graphql_api_id": gid("Order", order.id),
        "name": f"#{order.number}",
        "order_number": order.number,
        "email": order.email,
        "created_at": iso(order.created_at),
        "processed_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
        "cancelled_at": iso(order.cancelled_at),
        "closed_at": iso(order.updated_at) if order.is_fulfilled else None,
        "currency": order.currency,
        "subtotal_price": money(order.subtotal),
        "total_discounts": money(order.discount),
        "total_tax": money(order.tax),
        "total_price": money(order.total),
        "total_shipping_price_set": rest_money_set(order.shipping),
        "financial_status": "voided" if order.cancelled_at else _financial(order).lower(),
        "fulfillment_status": "fulfilled" if order.is_fulfilled else None,
        "discount_codes": [{"code": order.discount_code, "amount": money(order.discount), "type": "fixed_amount"}]
        if order.discount_code
        else [],
        "customer": shopify_customer_rest(customer) if customer else None,
        "line_items": [
            {
                "id": line.id,
                "product_id": line.product_id,
                "variant_id": line.product_id + 1,
                "title": line.title,
                "sku": line.sku,
                "quantity": line.quantity,
                "price": money(line.price),
                "total_discount": "0.00",
            }
            for line in order.lines
        ],
        "refunds": [
            {
                "id": order.id + 1,
                "created_at": iso(order.refunded_at),
                "transactions": [{"kind": "refund", "status": "success", "amount": money(order.refunded)}],
            }
        ]
        if order.refunded
        else [],
    }


def shopify_checkout_rest(checkout: FakeCheckout, catalogue: FakeCatalogue, shop_host: str) -> dict:
    customer = catalogue.customer(checkout.customer_id)
    return {
        "id": checkout.id,
        "token": checkout.token,
        "cart_token": checkout.token[::-1],
        "email": checkout.email,
        "created_at": iso(checkout.created_at),
        "updated_at": iso(checkout.updated_at),
        "completed_at": iso(checkout.completed_at),
        "currency": checkout.currency,
        "total_price": money(checkout.total),
        "abandoned_checkout_url": f"https://{shop_host}/checkouts/{checkout.token}/recover",
        "customer": shopify_customer_rest(customer) if customer else None,
        "line_items": [
            {
                "product_id": line.product_id,
                "variant_id": line.product_id + 1,
                "title": line.title,
                "sku": line.sku,
                "quantity": line.quantity,
                "price": money(line.price),
            }
            for line in checkout.lines
        ],
    }


# --- WooCommerce REST v3 ---------------------------------------------------------------------------------------


def _wc_dates(prefix: str, value: dt.datetime | None) -> dict:
    return {prefix: wc_gmt(value), f"{prefix}_gmt": wc_gmt(value)}


def woo_customer(customer: FakeCustomer) -> dict:
    address = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "company": "",
        "address_1": customer.address1,
        "address_2": "",
        "city": customer.city,
        "state": customer.province,
        "postcode": customer.zip,
        "country": customer.country,
    }
    return {
        "id": customer.id,
        **_wc_dates("date_created", customer.created_at),
        **_wc_dates("date_modified", customer.updated_at),
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "role": "customer",
        "username": customer.email.split("@")[0],
        "billing": {**address, "email": customer.email, "phone": customer.phone},
        "shipping": address,
        "is_paying_customer": True,
        "avatar_url": "",
        "meta_data": [],
    }


def woo_product(product: FakeProduct, site: str) -> dict:
    return {
        "id": product.id,
        "name": product.title,
        "slug": product.handle,
        "permalink": f"{site}/product/{product.handle}/",
        **_wc_dates("date_created", product.created_at),
        **_wc_dates("date_modified", product.updated_at),
        "type": "simple",
        "status": "publish",
        "sku": product.sku,
        "price": money(product.price),
        "regular_price": money(product.price),
        "sale_price": "",
        "stock_quantity": product.inventory,
        "stock_status": "instock" if product.inventory > 0 else "outofstock",
        "categories": [
            {"id": abs(hash(product.category)) % 1000, "name": product.category, "slug": product.category.lower()}
        ],
        "images": [],
    }


def _woo_status(order: FakeOrder) -> str:
    if order.cancelled_at:
        return "cancelled"
    if order.refunded and order.refunded >= order.total:
        return "refunded"
    return "completed" if order.is_fulfilled else "processing"


def woo_order(order: FakeOrder, catalogue: FakeCatalogue) -> dict:
    customer = catalogue.customer(order.customer_id)
    billing = {
        "first_name": customer.first_name if customer else "",
        "last_name": customer.last_name if customer else "",
        "email": order.email,
        "phone": customer.phone if customer else "",
        "city": customer.city if customer else "",
        "country": customer.country if customer else "",
    }
    return {
        "id": order.id,
        "parent_id": 0,
        "number": str(order.number),
        "order_key": f"wc_order_{order.id}",
        "created_via": "checkout",
        "status": _woo_status(order),
        "currency": order.currency,
        **_wc_dates("date_created", order.created_at),
        **_wc_dates("date_modified", order.updated_at),
        "discount_total": money(order.discount),
        "discount_tax": "0.00",
        "shipping_total": money(order.shipping),
        "shipping_tax": "0.00",
        "cart_tax": money(order.tax),
        "total": money(order.total),
        "total_tax": money(order.tax),
        "prices_include_tax": False,
        "customer_id": order.customer_id or 0,
        "billing": billing,
        "payment_method": "stripe",
        "line_items": [
            {
                "id": line.id,
                "name": line.title,
                "product_id": line.product_id,
                "variation_id": 0,
                "quantity": line.quantity,
                "subtotal": money(line.price * line.quantity),
                "total": money(line.price * line.quantity),
                "sku": line.sku,
                "price": float(line.price),
            }
            for line in order.lines
        ],
        "coupon_lines": [{"id": 1, "code": order.discount_code.lower(), "discount": money(order.discount)}]
        if order.discount_code
        else [],
        "refunds": [{"id": order.id + 1, "reason": "", "total": f"-{money(order.refunded)}"}] if order.refunded else [],
    }
