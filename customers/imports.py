"""CSV import of customers and of orders.

Flow: ``import_job_create`` stores the upload and reads its shape (encoding, delimiter, header, row count, a guessed
column mapping); the user confirms the mapping on a preview; ``import_job_start`` queues ``import_run`` in the
background, which parses rows into canonical records, rejects bad rows with (row, field, reason) and sends every
valid row through the same bulk upserts as the store connectors. Row numbers are spreadsheet row numbers (the
header is row 1).

Orders files may have one row per order or one row per line item (the Shopify export shape): consecutive rows with
the same order id are one order, each row adding its line.
"""

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from crm.exceptions import DomainError
from crm.models import Workspace
from customers.models import ConsentStatus, Gender, ImportJob, OrderStatus, Source
from customers.normalize import InvalidValue, normalize_country, normalize_email, normalize_phone
from customers.records import CustomerRecord, OrderLineRecord, OrderRecord

BATCH_ROWS = 1000
MAX_STORED_ERRORS = 2000
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
PREVIEW_ROWS = 5


@dataclass(frozen=True, kw_only=True)
class ImportField:
    name: str
    label: str
    synonyms: tuple[str, ...] = ()
    required: bool = False


CUSTOMER_FIELDS = [
    ImportField(name="external_id", label="Customer id", synonyms=("id", "customerid", "customer", "clientid")),
    ImportField(name="email", label="Email", synonyms=("email", "emailaddress", "mail", "courriel")),
    ImportField(name="phone", label="Phone", synonyms=("phone", "phonenumber", "mobile", "tel", "telephone", "cell")),
    ImportField(name="first_name", label="First name", synonyms=("firstname", "givenname", "first", "prenom")),
    ImportField(name="last_name", label="Last name", synonyms=("lastname", "surname", "familyname", "last", "nom")),
    ImportField(name="full_name", label="Full name (split into first and last)", synonyms=("name", "fullname")),
    ImportField(name="birth_date", label="Birth date", synonyms=("birthdate", "birthday", "dateofbirth", "dob")),
    ImportField(name="gender", label="Gender", synonyms=("gender", "sex")),
    ImportField(name="address_line", label="Address", synonyms=("address", "address1", "street", "addressline")),
    ImportField(name="city", label="City", synonyms=("city", "town", "ville")),
    ImportField(name="region", label="Region / state", synonyms=("region", "state", "province", "provincecode")),
    ImportField(name="postcode", label="Postcode", synonyms=("postcode", "zip", "zipcode", "postalcode")),
    ImportField(name="country", label="Country code", synonyms=("country", "countrycode", "pays")),
    ImportField(name="language", label="Language", synonyms=("language", "locale", "lang")),
    ImportField(
        name="email_consent",
        label="Email marketing consent",
        synonyms=("acceptsemailmarketing", "acceptsmarketing", "emailconsent", "newsletter", "optin"),
    ),
    ImportField(name="sms_consent", label="SMS marketing consent", synonyms=("acceptssmsmarketing", "smsconsent")),
    ImportField(name="tags", label="Tags (separated by , or ;)", synonyms=("tags", "tag", "labels")),
    ImportField(name="loyalty_points", label="Loyalty points", synonyms=("loyaltypoints", "points")),
    ImportField(name="created_at", label="Customer since", synonyms=("createdat", "created", "signupdate")),
]

ORDER_FIELDS = [
    ImportField(name="external_id", label="Order id", synonyms=("orderid", "id", "order"), required=True),
    ImportField(name="number", label="Order number", synonyms=("name", "ordernumber", "number")),
    ImportField(name="customer_external_id", label="Customer id", synonyms=("customerid", "clientid")),
    ImportField(name="email", label="Customer email", synonyms=("email", "customeremail", "emailaddress")),
    ImportField(
        name="placed_at",
        label="Placed at",
        synonyms=("createdat", "placedat", "orderdate", "date", "processedat"),
        required=True,
    ),
    ImportField(name="status", label="Status", synonyms=("status", "orderstatus")),
    ImportField(name="financial_status", label="Financial status", synonyms=("financialstatus", "paymentstatus")),
    ImportField(
        name="fulfillment_status", label="Fulfilment status", synonyms=("fulfillmentstatus", "fulfilmentstatus")
    ),
    ImportField(name="currency", label="Currency", synonyms=("currency",)),
    ImportField(name="subtotal", label="Subtotal", synonyms=("subtotal",)),
    ImportField(name="discount_total", label="Discount amount", synonyms=("discountamount", "discount", "discounts")),
    ImportField(name="discount_codes", label="Discount codes", synonyms=("discountcode", "discountcodes")),
    ImportField(name="shipping_total", label="Shipping", synonyms=("shipping", "shippingtotal")),
    ImportField(name="tax_total", label="Tax", synonyms=("taxes", "tax", "taxtotal")),
    ImportField(name="total", label="Total", synonyms=("total", "ordertotal", "amount"), required=True),
    ImportField(name="refunded_total", label="Refunded amount", synonyms=("refundedamount", "refunded")),
    ImportField(name="cancelled_at", label="Cancelled at", synonyms=("cancelledat", "canceledat")),
    ImportField(
        name="line_title", label="Line: product title", synonyms=("lineitemname", "producttitle", "product", "item")
    ),
    ImportField(name="line_sku", label="Line: SKU", synonyms=("lineitemsku", "sku")),
    ImportField(name="line_category", label="Line: category", synonyms=("category", "producttype", "lineitemcategory")),
    ImportField(name="line_quantity", label="Line: quantity", synonyms=("lineitemquantity", "quantity", "qty")),
    ImportField(name="line_price", label="Line: unit price", synonyms=("lineitemprice", "unitprice", "price")),
]

FIELDS_BY_KIND: dict[str, list[ImportField]] = {
    ImportJob.Kind.CUSTOMERS: CUSTOMER_FIELDS,
    ImportJob.Kind.ORDERS: ORDER_FIELDS,
}


# --- reading the file ------------------------------------------------------------------------------------------


def detect_encoding(raw: bytes) -> str:
    """UTF-8 (with or without BOM) when the bytes decode as such; else Windows-1252 / Latin-1, which decode
    anything (Excel on Windows saves "CSV" in cp1252)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def detect_delimiter(sample: str) -> str:
    header = sample.splitlines()[0] if sample else ""
    try:
        return csv.Sniffer().sniff(sample[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t", "|")}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _normal(header: str) -> str:
    """ "Prénom", "E-mail " and "prenom" all become "prenom" / "email"."""
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_text.lower())


def guess_mapping(*, kind: str, headers: list[str]) -> dict[str, str]:
    """field name -> column header, matching headers to each field's synonyms (exact normalised match first)."""
    mapping: dict[str, str] = {}
    used: set[str] = set()
    normalised = {header: _normal(header) for header in headers}
    for rule in (lambda n, s: n == s, lambda n, s: n.endswith(s) or n.startswith(s)):
        for field in FIELDS_BY_KIND[kind]:
            if field.name in mapping:
                continue
            for header, norm in normalised.items():
                if header in used or not norm:
                    continue
                if any(rule(norm, synonym) for synonym in (_normal(field.name), *field.synonyms)):
                    mapping[field.name] = header
                    used.add(header)
                    break
    return mapping


def _read_text(job: ImportJob) -> str:
    with job.file.open("rb") as handle:
        raw = handle.read()
    return raw.decode(job.encoding or detect_encoding(raw))


def _reader(job: ImportJob, text: str | None = None) -> Iterator[list[str]]:
    return csv.reader(io.StringIO(text if text is not None else _read_text(job)), delimiter=job.delimiter or ",")


def import_headers_and_preview(*, job: ImportJob, rows: int = PREVIEW_ROWS) -> tuple[list[str], list[list[str]]]:
    reader = _reader(job)
    headers = next(reader, [])
    preview: list[list[str]] = []
    for row in reader:
        if len(preview) >= rows:
            break
        if any(cell.strip() for cell in row):
            preview.append(row)
    return headers, preview


@transaction.atomic
def import_job_create(*, workspace: Workspace, kind: str, upload: UploadedFile, user) -> ImportJob:
    if kind not in FIELDS_BY_KIND:
        raise DomainError("Choose what the file contains: customers or orders.", field="kind")
    if upload.size and upload.size > MAX_UPLOAD_BYTES:
        raise DomainError("The file is larger than 200 MB; split it into smaller files.", field="file")
    raw = upload.read()
    if not raw.strip():
        raise DomainError("The file is empty.", field="file")
    if b"\x00" in raw[:4096]:
        raise DomainError("This does not look like a CSV file (it contains binary data).", field="file")
    encoding = detect_encoding(raw)
    text = raw.decode(encoding)
    delimiter = detect_delimiter(text[:65536])
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        headers = [h.strip() for h in next(reader, [])]
        if not any(headers):
            raise DomainError("The first row must name the columns.", field="file")
        data_rows = sum(1 for row in reader if any(cell.strip() for cell in row))
    except csv.Error as error:
        raise DomainError(f"The file is not valid CSV: {error}.", field="file") from error
    upload.seek(0)
    job = ImportJob(
        workspace=workspace,
        kind=kind,
        original_name=(upload.name or "upload.csv")[:255],
        encoding=encoding,
        delimiter=delimiter,
        mapping=guess_mapping(kind=kind, headers=headers),
        total_rows=data_rows,
        created_by=user,
    )
    job.file.save(f"{kind}-{timezone.now():%Y%m%d%H%M%S}.csv", upload, save=False)
    job.save()
    return job


def import_mapping_validate(*, kind: str, mapping: dict[str, str], headers: list[str]) -> dict[str, str]:
    fields = {field.name: field for field in FIELDS_BY_KIND[kind]}
    clean = {name: header for name, header in mapping.items() if name in fields and header in headers}
    missing = [field.label for field in fields.values() if field.required and field.name not in clean]
    if missing:
        raise DomainError(f"Choose a column for: {', '.join(missing)}.")
    if kind == ImportJob.Kind.CUSTOMERS and not {"external_id", "email", "phone"} & set(clean):
        raise DomainError("Choose a column for the customer id, the email or the phone, so rows can be matched.")
    used = list(clean.values())
    duplicated = {header for header in used if used.count(header) > 1}
    if duplicated:
        raise DomainError(f"A column can feed one field only: {', '.join(sorted(duplicated))}.")
    return clean


def import_job_start(*, workspace: Workspace, job: ImportJob, mapping: dict[str, str]) -> ImportJob:
    from customers import tasks

    if job.status != ImportJob.Status.MAPPING:
        raise DomainError("This import has already started.")
    headers, _ = import_headers_and_preview(job=job, rows=0)
    job.mapping = import_mapping_validate(kind=job.kind, mapping=mapping, headers=[h.strip() for h in headers])
    job.status = ImportJob.Status.QUEUED
    job.save(update_fields=["mapping", "status"])
    transaction.on_commit(lambda: tasks.import_run.delay(workspace.id, job.id))
    return job


# --- parsing rows ----------------------------------------------------------------------------------------------


class RowError(Exception):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


TRUE_WORDS = {"yes", "y", "true", "1", "subscribed", "opted in", "optin", "oui", "x"}
FALSE_WORDS = {"no", "n", "false", "0", "not subscribed", "not_subscribed", "non", ""}
UNSUBSCRIBED_WORDS = {"unsubscribed", "opted out", "optout"}
DATE_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y")


def _parse_decimal(value: str, field: str) -> Decimal:
    text = value.strip().replace("\u00a0", "").replace(" ", "")
    text = re.sub(r"^[^\d\-.,]+|[^\d.,]+$", "", text)  # currency symbols before or after
    if "," in text and "." in text:
        text = text.replace(",", "") if text.rfind(".") > text.rfind(",") else text.replace(".", "").replace(",", ".")
    elif "," in text:
        text = text.replace(",", ".") if re.fullmatch(r"-?\d+,\d{1,2}", text) else text.replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation as error:
        raise RowError(field, f"{value!r} is not an amount") from error
    if not number.is_finite() or abs(number) >= Decimal("1e12"):
        raise RowError(field, f"{value!r} is not an amount")
    return number.quantize(Decimal("0.01"))


def _parse_int(value: str, field: str) -> int:
    try:
        return int(Decimal(value.strip().replace(",", "")))
    except (InvalidOperation, ValueError) as error:
        raise RowError(field, f"{value!r} is not a whole number") from error


def _parse_date(value: str, field: str) -> dt.date:
    text = value.strip()
    parsed = parse_date(text[:10]) if re.match(r"^\d{4}-\d{2}-\d{2}", text) else None
    if parsed:
        return parsed
    for date_format in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, date_format).date()  # noqa: DTZ007 - a calendar date, no time
        except ValueError:
            continue
    raise RowError(field, f"{value!r} is not a date (use YYYY-MM-DD)")


def _parse_datetime(value: str, field: str, tz) -> dt.datetime:
    text = value.strip()
    try:
        parsed = parse_datetime(text.replace(" UTC", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None:
        date = _parse_date(text, field)
        parsed = dt.datetime.combine(date, dt.time(12, 0))
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=tz)
    if parsed.year < 1990 or parsed > timezone.now() + dt.timedelta(days=2):
        raise RowError(field, f"{value!r} is not a plausible date")
    return parsed


def _parse_consent(value: str, field: str) -> str | None:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return ConsentStatus.SUBSCRIBED
    if word in UNSUBSCRIBED_WORDS:
        return ConsentStatus.UNSUBSCRIBED
    if word in FALSE_WORDS:
        return ConsentStatus.NOT_SUBSCRIBED
    if word == "pending":
        return ConsentStatus.PENDING
    raise RowError(field, f"{value!r} is not a consent answer (yes / no / unsubscribed)")


GENDERS = {
    "f": Gender.FEMALE,
    "female": Gender.FEMALE,
    "woman": Gender.FEMALE,
    "m": Gender.MALE,
    "male": Gender.MALE,
    "man": Gender.MALE,
    "other": Gender.OTHER,
    "x": Gender.OTHER,
    "": Gender.UNKNOWN,
}


def customer_record_from_row(values: dict[str, str], *, default_region: str = "US") -> CustomerRecord:
    def get(name: str) -> str:
        return (values.get(name) or "").strip()

    fields: dict[str, Any] = {}
    try:
        fields["email"] = normalize_email(get("email"))
    except InvalidValue as error:
        raise RowError("email", str(error)) from error
    try:
        fields["country"] = normalize_country(get("country"))
    except InvalidValue as error:
        raise RowError("country", str(error)) from error
    try:
        fields["phone"] = normalize_phone(get("phone"), default_region=fields["country"] or default_region)
    except InvalidValue as error:
        raise RowError("phone", str(error)) from error
    first, last = get("first_name"), get("last_name")
    if not first and not last and get("full_name"):
        first, _, last = get("full_name").partition(" ")
    fields.update(first_name=first[:100], last_name=last[:100])
    for name, limit in (("address_line", 255), ("city", 100), ("region", 100), ("postcode", 20), ("language", 10)):
        fields[name] = get(name)[:limit]
    if get("birth_date"):
        fields["birth_date"] = _parse_date(get("birth_date"), "birth_date")
    if get("gender").lower() not in GENDERS:
        raise RowError("gender", f"{get('gender')!r} is not a gender this CRM knows (female / male / other)")
    fields["gender"] = GENDERS[get("gender").lower()]
    if "email_consent" in values:
        fields["email_consent"] = _parse_consent(get("email_consent"), "email_consent")
        fields["email_consent_source"] = Source.CSV
    if "sms_consent" in values:
        fields["sms_consent"] = _parse_consent(get("sms_consent"), "sms_consent")
        fields["sms_consent_source"] = Source.CSV
    if get("loyalty_points"):
        fields["loyalty_points"] = _parse_int(get("loyalty_points"), "loyalty_points")
    if get("created_at"):
        fields["created_at"] = _parse_datetime(get("created_at"), "created_at", dt.UTC)
    fields["tags"] = tuple(tag.strip()[:64] for tag in re.split(r"[;,]", get("tags")) if tag.strip())
    external_id = get("external_id")
    if not external_id:
        if fields["email"]:
            external_id = f"email:{fields['email']}"
        elif fields["phone"]:
            external_id = f"phone:{fields['phone']}"
        else:
            raise RowError("email", "the row has no customer id, no email and no phone, so it cannot be matched")
    return CustomerRecord(source=Source.CSV, external_id=external_id[:100], **fields)


ORDER_STATUSES = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.CLOSED,
    "archived": OrderStatus.CLOSED,
    "fulfilled": OrderStatus.CLOSED,
    "completed": OrderStatus.CLOSED,
    "cancelled": OrderStatus.CANCELLED,
    "canceled": OrderStatus.CANCELLED,
    "": OrderStatus.OPEN,
}
FINANCIAL_STATUSES = {"pending", "authorized", "paid", "partially_refunded", "refunded", "voided"}


def order_fields_from_row(values: dict[str, str], *, tz) -> dict[str, Any]:
    """Order-level fields of a row (the first row of an order decides them)."""

    def get(name: str) -> str:
        return (values.get(name) or "").strip()

    fields: dict[str, Any] = {"external_id": get("external_id")[:100], "number": get("number")[:50]}
    if not fields["external_id"]:
        raise RowError("external_id", "the order id is empty")
    try:
        fields["email"] = normalize_email(get("email"))
    except InvalidValue as error:
        raise RowError("email", str(error)) from error
    fields["customer_external_id"] = get("customer_external_id")[:100]
    if not get("placed_at"):
        raise RowError("placed_at", "the order date is empty")
    fields["placed_at"] = _parse_datetime(get("placed_at"), "placed_at", tz)
    status = get("status").lower()
    if status not in ORDER_STATUSES:
        raise RowError("status", f"{get('status')!r} is not an order status (open / closed / cancelled)")
    fields["status"] = ORDER_STATUSES[status]
    financial = get("financial_status").lower().replace(" ", "_") or "paid"
    if financial not in FINANCIAL_STATUSES:
        raise RowError("financial_status", f"{get('financial_status')!r} is not a payment status")
    fields["financial_status"] = financial
    fields["fulfillment_status"] = get("fulfillment_status")[:20]
    currency = get("currency").upper() or "USD"
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise RowError("currency", f"{get('currency')!r} is not a three-letter currency code")
    fields["currency"] = currency
    if not get("total"):
        raise RowError("total", "the order total is empty")
    for name in ("subtotal", "discount_total", "shipping_total", "tax_total", "total", "refunded_total"):
        if get(name):
            fields[name] = _parse_decimal(get(name), name)
    if fields["total"] < 0:
        raise RowError("total", "the order total cannot be negative")
    if "subtotal" not in fields:
        fields["subtotal"] = fields["total"]
    fields["discount_codes"] = tuple(code.strip() for code in re.split(r"[;,]", get("discount_codes")) if code.strip())
    if get("cancelled_at"):
        fields["cancelled_at"] = _parse_datetime(get("cancelled_at"), "cancelled_at", tz)
    if not fields["customer_external_id"] and not fields["email"]:
        raise RowError("email", "the order has no customer id and no email, so it cannot be linked to a customer")
    return fields


def order_line_from_row(values: dict[str, str]) -> OrderLineRecord | None:
    def get(name: str) -> str:
        return (values.get(name) or "").strip()

    if not get("line_title") and not get("line_sku"):
        return None
    quantity = _parse_int(get("line_quantity"), "line_quantity") if get("line_quantity") else 1
    if quantity <= 0:
        raise RowError("line_quantity", f"{get('line_quantity')!r} is not a positive quantity")
    price = _parse_decimal(get("line_price"), "line_price") if get("line_price") else Decimal("0")
    return OrderLineRecord(
        title=get("line_title")[:255],
        sku=get("line_sku")[:100],
        category=get("line_category")[:100],
        quantity=quantity,
        unit_price=price,
    )


# --- running an import -----------------------------------------------------------------------------------------


@dataclass
class _Progress:
    processed: int = 0
    imported: int = 0
    rejected: int = 0


def _mapped_rows(job: ImportJob) -> Iterator[tuple[int, dict[str, str]]]:
    """(spreadsheet row number, {field: value}) for every non-blank data row."""
    reader = _reader(job)
    headers = [h.strip() for h in next(reader, [])]
    index = {header: position for position, header in enumerate(headers)}
    columns = {name: index[header] for name, header in job.mapping.items() if header in index}
    for line_number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        yield line_number, {name: row[position] if position < len(row) else "" for name, position in columns.items()}


def _save_progress(job: ImportJob, progress: _Progress, errors: list[dict]) -> None:
    job.processed_rows = progress.processed
    job.imported_rows = progress.imported
    job.rejected_rows = progress.rejected
    job.errors = errors[:MAX_STORED_ERRORS]
    ImportJob.objects.filter(pk=job.pk).update(
        processed_rows=job.processed_rows,
        imported_rows=job.imported_rows,
        rejected_rows=job.rejected_rows,
        errors=job.errors,
    )


def _import_customers(workspace: Workspace, job: ImportJob, progress: _Progress, errors: list[dict]) -> None:
    from customers.services import customers_bulk_upsert

    default_region = (workspace.settings or {}).get("default_country") or "US"
    batch: list[CustomerRecord] = []
    rows_in_batch = 0
    for line_number, values in _mapped_rows(job):
        rows_in_batch += 1
        try:
            batch.append(customer_record_from_row(values, default_region=default_region))
        except RowError as error:
            errors.append({"row": line_number, "field": error.field, "reason": error.reason})
            progress.rejected += 1
        if rows_in_batch >= BATCH_ROWS:
            customers_bulk_upsert(workspace=workspace, records=batch)
            progress.imported += len(batch)
            progress.processed += rows_in_batch
            batch, rows_in_batch = [], 0
            _save_progress(job, progress, errors)
    if batch:
        customers_bulk_upsert(workspace=workspace, records=batch)
        progress.imported += len(batch)
    progress.processed += rows_in_batch


def _import_orders(workspace: Workspace, job: ImportJob, progress: _Progress, errors: list[dict]) -> None:
    from customers.services import orders_bulk_upsert

    tz = workspace.tzinfo
    seen: set[str] = set()
    ready: list[OrderRecord] = []
    ready_rows = 0
    current: dict[str, Any] | None = None  # {"fields", "lines", "rows", "failed"}

    def finish_current() -> None:
        nonlocal ready_rows
        if current is None:
            return
        if current["failed"]:
            return
        fields = current["fields"]
        ready.append(OrderRecord(source=Source.CSV, lines=tuple(current["lines"]), **fields))
        ready_rows += current["rows"]

    def flush() -> None:
        nonlocal ready, ready_rows
        if ready:
            orders_bulk_upsert(workspace=workspace, records=ready)
            progress.imported += ready_rows
        ready, ready_rows = [], 0

    for line_number, values in _mapped_rows(job):
        progress.processed += 1
        order_id = (values.get("external_id") or "").strip()
        if current is not None and order_id == current["fields"].get("external_id") and order_id:
            # Another line item of the same order.
            if current["failed"]:
                errors.append(
                    {
                        "row": line_number,
                        "field": "external_id",
                        "reason": f"order {order_id} was rejected on an earlier row",
                    }
                )
                progress.rejected += 1
                continue
            try:
                line = order_line_from_row(values)
            except RowError as error:
                errors.append({"row": line_number, "field": error.field, "reason": error.reason})
                progress.rejected += 1
                continue
            if line:
                current["lines"].append(line)
            current["rows"] += 1
            continue
        finish_current()
        current = None
        if len(ready) >= BATCH_ROWS:
            flush()
            _save_progress(job, progress, errors)
        try:
            if order_id in seen:
                raise RowError(
                    "external_id", f"order {order_id} appeared earlier in the file; keep the rows of one order together"
                )
            fields = order_fields_from_row(values, tz=tz)
            line = order_line_from_row(values)
            current = {"fields": fields, "lines": [line] if line else [], "rows": 1, "failed": False}
        except RowError as error:
            errors.append({"row": line_number, "field": error.field, "reason": error.reason})
            progress.rejected += 1
            current = {"fields": {"external_id": order_id}, "lines": [], "rows": 1, "failed": True}
        if order_id:
            seen.add(order_id)
    finish_current()
    flush()


def import_run(*, workspace: Workspace, job: ImportJob) -> ImportJob:
    """Run a queued import. A retried or duplicated task finds the job no longer queued and does nothing."""
    claimed = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING
    )
    if not claimed:
        return job
    job.refresh_from_db()
    progress = _Progress()
    errors: list[dict] = []
    try:
        if job.kind == ImportJob.Kind.CUSTOMERS:
            _import_customers(workspace, job, progress, errors)
        else:
            _import_orders(workspace, job, progress, errors)
    except (UnicodeDecodeError, csv.Error) as error:
        _save_progress(job, progress, errors)
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED, message=f"The file could not be read: {error}", finished_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    _save_progress(job, progress, errors)
    total_errors = progress.rejected
    message = f"Imported {progress.imported} row{'s' if progress.imported != 1 else ''}"
    message += f", rejected {total_errors}." if total_errors else "."
    if len(errors) > MAX_STORED_ERRORS:
        message += f" The first {MAX_STORED_ERRORS} rejected rows are listed."
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.DONE, message=message, finished_at=timezone.now(), total_rows=progress.processed
    )
    job.refresh_from_db()
    return job
