"""Data care views: CSV import, duplicates and merges, GDPR export and erasure."""

import json

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from crm.exceptions import DomainError
from crm.permissions import Capability, requires
from crm.urls_helpers import ws_reverse
from customers import dedupe, gdpr, imports, selectors
from customers.models import Customer, ImportJob

# --- CSV import ------------------------------------------------------------------------------------------------


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(choices=ImportJob.Kind.choices, initial=ImportJob.Kind.CUSTOMERS)
    file = forms.FileField()


@requires(Capability.EDIT_CUSTOMERS)
def import_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = imports.import_job_create(
                workspace=request.workspace,
                kind=form.cleaned_data["kind"],
                upload=form.cleaned_data["file"],
                user=request.user,
            )
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            return redirect(ws_reverse(request, "customers:import_detail", import_id=job.id))
    context = {"form": form, "jobs": selectors.import_jobs_recent(workspace=request.workspace)}
    return render(request, "customers/imports.html", context, status=400 if form.errors else 200)


def _import_context(request: HttpRequest, job: ImportJob) -> dict:
    context: dict = {"job": job}
    if job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING):
        context["poll_url"] = ws_reverse(request, "customers:import_progress", import_id=job.id)
    return context


@requires(Capability.EDIT_CUSTOMERS)
def import_detail(request: HttpRequest, workspace_slug: str, import_id: int) -> HttpResponse:
    job = selectors.import_job_get(workspace=request.workspace, import_id=import_id)
    context = _import_context(request, job)
    if job.status == ImportJob.Status.MAPPING:
        headers, preview = imports.import_headers_and_preview(job=job)
        headers = [h.strip() for h in headers]
        mapping = dict(job.mapping)
        error = ""
        if request.method == "POST":
            mapping = {
                field.name: request.POST.get(f"map_{field.name}", "")
                for field in imports.FIELDS_BY_KIND[job.kind]
                if request.POST.get(f"map_{field.name}")
            }
            try:
                imports.import_job_start(workspace=request.workspace, job=job, mapping=mapping)
            except DomainError as domain_error:
                error = domain_error.message
            else:
                return redirect(ws_reverse(request, "customers:import_detail", import_id=job.id))
        context.update(
            headers=headers,
            preview=preview,
            fields=[(field, mapping.get(field.name, "")) for field in imports.FIELDS_BY_KIND[job.kind]],
            error=error,
        )
        return render(request, "customers/import_detail.html", context, status=400 if error else 200)
    return render(request, "customers/import_detail.html", context)


@require_GET
@requires(Capability.EDIT_CUSTOMERS)
def import_progress(request: HttpRequest, workspace_slug: str, import_id: int) -> HttpResponse:
    job = selectors.import_job_get(workspace=request.workspace, import_id=import_id)
    return render(request, "customers/import_detail.html#status", _import_context(request, job))


# --- duplicates ------------------------------------------------------------------------------------------------


@require_GET
@requires(Capability.VIEW)
def duplicate_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    groups = dedupe.duplicate_groups_find(workspace=request.workspace)
    context = {
        "groups": [(group, dedupe.survivor_suggest(group.customers)) for group in groups if len(group.customers) > 1],
        "merges": dedupe.merges_recent(workspace=request.workspace),
    }
    return render(request, "customers/duplicates.html", context)


@require_POST
@requires(Capability.EDIT_CUSTOMERS)
def duplicate_merge(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    try:
        survivor_id = int(request.POST.get("survivor_id", ""))
        merge_ids = {int(value) for value in request.POST.getlist("customer_ids")} - {survivor_id}
    except ValueError:
        messages.error(request, "Choose the profile to keep.")
        return redirect(ws_reverse(request, "customers:duplicates"))
    survivor = selectors.customer_get(workspace=workspace, customer_id=survivor_id)
    duplicates = list(Customer.objects.filter(workspace=workspace, id__in=merge_ids))
    try:
        survivor = dedupe.customer_merge(
            workspace=workspace, survivor=survivor, duplicates=duplicates, actor=request.user
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(ws_reverse(request, "customers:duplicates"))
    messages.success(
        request,
        f"Merged {len(duplicates)} profile{'s' if len(duplicates) != 1 else ''} into {survivor}. "
        "You can undo it from the duplicates page.",
    )
    if request.POST.get("next") == "customer":
        return redirect(ws_reverse(request, "customers:detail", customer_id=survivor.id))
    return redirect(ws_reverse(request, "customers:duplicates"))


@require_POST
@requires(Capability.EDIT_CUSTOMERS)
def merge_undo(request: HttpRequest, workspace_slug: str, audit_id: int) -> HttpResponse:
    audit = dedupe.merge_audit_get(workspace=request.workspace, audit_id=audit_id)
    try:
        survivor = dedupe.customer_merge_undo(workspace=request.workspace, audit=audit, actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"The merge into {survivor} was undone; the profiles are separate again.")
    return redirect(ws_reverse(request, "customers:duplicates"))


# --- GDPR ------------------------------------------------------------------------------------------------------


@require_POST
@requires(Capability.EXPORT_DATA)
def gdpr_export(request: HttpRequest, workspace_slug: str, customer_id: int) -> HttpResponse:
    customer = selectors.customer_get(workspace=request.workspace, customer_id=customer_id)
    data = gdpr.customer_data_export(workspace=request.workspace, customer=customer, actor=request.user)
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.id}-{timezone.now():%Y%m%d}.json"'
    return response


@require_POST
@requires(Capability.ERASE_CUSTOMERS)
def gdpr_erase(request: HttpRequest, workspace_slug: str, customer_id: int) -> HttpResponse:
    customer = selectors.customer_get(workspace=request.workspace, customer_id=customer_id)
    gdpr.customer_erase(workspace=request.workspace, customer=customer, actor=request.user)
    messages.success(request, "The customer's personal data was erased. Their orders remain as anonymous totals.")
    return redirect(ws_reverse(request, "customers:detail", customer_id=customer.id))
