from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from crm.exceptions import DomainError
from crm.permissions import Capability, requires
from integrations import reconciliation, selectors, services, sync
from integrations.forms import ConnectionForm, RotateSecretForm, TrackingForm
from integrations.models import SyncKind


def _webhook_url(connection) -> str:
    return settings.SITE_URL + reverse(
        f"integrations_public:{connection.platform}_webhook", kwargs={"token": connection.webhook_token}
    )


def _page_context(request: HttpRequest, form: ConnectionForm | None = None) -> dict:
    workspace = request.workspace
    tracking = services.tracking_get_or_create(workspace=workspace)
    healths = [
        selectors.connection_health(workspace=workspace, connection=c)
        for c in selectors.connection_list(workspace=workspace)
    ]
    tracker_url = settings.SITE_URL + reverse(
        "integrations_public:tracker_js", kwargs={"public_key": tracking.public_key}
    )
    return {
        "healths": healths,
        "form": form or ConnectionForm(),
        "tracking": tracking,
        "tracking_form": TrackingForm(
            initial={
                "allowed_origins": tracking.allowed_origins,
                "is_enabled": tracking.is_enabled,
                "abandoned_cart_delay_minutes": tracking.abandoned_cart_delay_minutes,
            }
        ),
        "snippet": f'<script async src="{tracker_url}"></script>',
        "batch_url": settings.SITE_URL
        + reverse("integrations_public:tracking_batch", kwargs={"public_key": tracking.public_key}),
    }


@require_GET
def list(request: HttpRequest, workspace_slug: str) -> HttpResponse:  # noqa: A001 - the URL name is "list"
    return render(request, "integrations/list.html", _page_context(request))


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def connection_add(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = ConnectionForm(request.POST)
    if form.is_valid():
        try:
            connection = services.connection_create(workspace=request.workspace, **form.cleaned_data)
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            result = services.connection_check(workspace=request.workspace, connection=connection)
            if result.is_ok:
                sync.sync_run_start(workspace=request.workspace, connection=connection, kind=SyncKind.FULL)
                messages.success(request, f"{result.message} The first full sync has started.")
            else:
                messages.warning(request, f"{connection.name} was saved, but the check failed: {result.message}")
            return redirect("integrations:connection", workspace_slug=workspace_slug, connection_id=connection.pk)
    return render(request, "integrations/list.html", _page_context(request, form), status=400)


@require_GET
def connection(request: HttpRequest, workspace_slug: str, connection_id: int) -> HttpResponse:
    workspace = request.workspace
    store = selectors.connection_get(workspace=workspace, connection_id=connection_id)
    return render(
        request,
        "integrations/connection.html",
        {
            "health": selectors.connection_health(workspace=workspace, connection=store),
            "connection": store,
            "runs": selectors.sync_run_list(workspace=workspace, connection=store),
            "deliveries": selectors.webhook_delivery_list(workspace=workspace, connection=store),
            "webhook_url": _webhook_url(store),
            "rotate_form": RotateSecretForm(),
        },
    )


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def connection_check(request: HttpRequest, workspace_slug: str, connection_id: int) -> HttpResponse:
    store = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    result = services.connection_check(workspace=request.workspace, connection=store)
    if request.htmx:
        return render(request, "integrations/connection.html#check_result", {"result": result})
    (messages.success if result.is_ok else messages.error)(request, result.message)
    return redirect("integrations:connection", workspace_slug=workspace_slug, connection_id=store.pk)


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def connection_pause(request: HttpRequest, workspace_slug: str, connection_id: int) -> HttpResponse:
    store = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    is_paused = request.POST.get("is_paused") == "1"
    services.connection_set_paused(workspace=request.workspace, connection=store, is_paused=is_paused)
    messages.success(request, f"{store.name} is paused." if is_paused else f"{store.name} is running again.")
    return redirect("integrations:connection", workspace_slug=workspace_slug, connection_id=store.pk)


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def connection_remove(request: HttpRequest, workspace_slug: str, connection_id: int) -> HttpResponse:
    store = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    services.connection_remove(workspace=request.workspace, connection=store)
    messages.success(request, f"{store.name} was disconnected. Its customers and orders stay in the CRM.")
    return redirect("integrations:list", workspace_slug=workspace_slug)


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def connection_sync(request: HttpRequest, workspace_slug: str, connection_id: int) -> HttpResponse:
    store = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    kind = SyncKind.FULL if request.POST.get("kind") == SyncKind.FULL else SyncKind.INCREMENTAL
    try:
        run = sync.sync_run_start(workspace=request.workspace, connection=store, kind=kind)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{run.get_kind_display()} sync started.")
    return redirect("integrations:connection", workspace_slug=workspace_slug, connection_id=store.pk)


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def connection_reconcile(request: HttpRequest, workspace_slug: str, connection_id: int) -> HttpResponse:
    store = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    run = reconciliation.connection_reconcile(workspace=request.workspace, connection=store)
    (messages.success if run.status == "done" else messages.error)(request, f"Reconciliation: {run.message}")
    return redirect("integrations:connection", workspace_slug=workspace_slug, connection_id=store.pk)


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def connection_rotate_secret(request: HttpRequest, workspace_slug: str, connection_id: int) -> HttpResponse:
    store = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    form = RotateSecretForm(request.POST)
    if form.is_valid():
        try:
            services.connection_rotate_webhook_secret(
                workspace=request.workspace, connection=store, new_secret=form.cleaned_data["webhook_secret"]
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "New webhook secret saved. The previous one is accepted for 24 more hours.")
    else:
        messages.error(request, "Enter the new webhook secret.")
    return redirect("integrations:connection", workspace_slug=workspace_slug, connection_id=store.pk)


@require_GET
def run_progress(request: HttpRequest, workspace_slug: str, connection_id: int, run_id: int) -> HttpResponse:
    store = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    run = selectors.sync_run_get(workspace=request.workspace, connection=store, run_id=run_id)
    response = render(request, "integrations/connection.html#run_progress", {"run": run, "connection": store})
    response["Vary"] = "HX-Request"
    return response


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def run_resume(request: HttpRequest, workspace_slug: str, connection_id: int, run_id: int) -> HttpResponse:
    store = selectors.connection_get(workspace=request.workspace, connection_id=connection_id)
    run = selectors.sync_run_get(workspace=request.workspace, connection=store, run_id=run_id)
    try:
        sync.sync_run_resume(workspace=request.workspace, run=run)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The sync resumes from where it stopped.")
    return redirect("integrations:connection", workspace_slug=workspace_slug, connection_id=store.pk)


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def tracking_update(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = TrackingForm(request.POST)
    if form.is_valid():
        try:
            services.tracking_update(workspace=request.workspace, **form.cleaned_data)
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Storefront tracking settings saved.")
    else:
        for field, errors in form.errors.items():
            messages.error(
                request, f"{form.fields[field].label if field in form.fields else field}: {' '.join(errors)}"
            )
    return redirect("integrations:list", workspace_slug=workspace_slug)


@require_POST
@requires(Capability.MANAGE_INTEGRATIONS)
def tracking_rotate(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    services.tracking_rotate_key(workspace=request.workspace)
    messages.success(
        request, "A new public key was made. Update the snippet on your storefront: the old key stops working now."
    )
    return redirect("integrations:list", workspace_slug=workspace_slug)
