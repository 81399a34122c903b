"""Campaign, template, flow and sending-settings pages. Thin: check the role, parse, call a service, render."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns import flow_builder, selectors, services
from campaigns import flows as flow_services
from campaigns.forms import (
    CampaignForm,
    FlowForm,
    PolicyForm,
    ScheduleForm,
    TemplateForm,
    TestSendForm,
    blocks_from_post,
    bootstrap,
)
from campaigns.models import Campaign, EmailTemplate, FlowStep
from campaigns.promo import promo_store
from campaigns.rendering import MERGE_FIELDS
from campaigns.sending import sending_policy
from crm.exceptions import DomainError
from crm.permissions import Capability, requires
from crm.urls_helpers import is_htmx, ws_reverse
from customers.models import Customer


def _segments(workspace):
    from segments.selectors import segment_list

    return list(segment_list(workspace=workspace))


# --- campaigns ----------------------------------------------------------------------------------------------


@requires(Capability.VIEW)
def campaign_index(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    return render(
        request,
        "campaigns/list.html",
        {
            "campaigns": selectors.campaign_list(workspace=workspace),
            "templates_count": selectors.template_list(workspace=workspace).count(),
            "tab": "campaigns",
        },
    )


@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return _campaign_form(request, None)


@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_edit(request: HttpRequest, workspace_slug: str, campaign_id: int) -> HttpResponse:
    return _campaign_form(request, selectors.campaign_get(workspace=request.workspace, campaign_id=campaign_id))


def _campaign_form(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    workspace = request.workspace
    segments = _segments(workspace)
    initial = {}
    if campaign is None and request.GET.get("template"):
        initial["template"] = request.GET["template"]
    form = bootstrap(
        CampaignForm(request.POST or None, instance=campaign, workspace=workspace, segments=segments, initial=initial)
    )
    if request.method == "POST" and form.is_valid():
        data = {k: form.cleaned_data[k] for k in form.Meta.fields}
        try:
            saved = services.campaign_save(workspace=workspace, campaign=campaign, user=request.user, **data)
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, "Campaign saved. Check the audience, then send or schedule it.")
            return redirect(ws_reverse(request, "campaigns:detail", campaign_id=saved.pk))
    return render(
        request,
        "campaigns/campaign_form.html",
        {
            "form": form,
            "campaign": campaign,
            "segments": segments,
            "tab": "campaigns",
            "has_templates": selectors.template_list(workspace=workspace).exists(),
        },
    )


@requires(Capability.VIEW)
def campaign_detail(request: HttpRequest, workspace_slug: str, campaign_id: int) -> HttpResponse:
    workspace = request.workspace
    campaign = selectors.campaign_get(workspace=workspace, campaign_id=campaign_id)
    total, variants = selectors.campaign_report(workspace=workspace, campaign=campaign)
    audience_size = None
    if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        audience_size = len(services.campaign_audience_ids(workspace=workspace, campaign=campaign))
    segment_names = {s.pk: s.name for s in _segments(workspace)}
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "report": total,
            "variants": variants,
            "audience_size": audience_size,
            "progress": selectors.campaign_progress(workspace=workspace, campaign=campaign),
            "audience_names": [segment_names.get(i, f"deleted segment #{i}") for i in campaign.audience_segment_ids],
            "excluded_names": [segment_names.get(i, f"deleted segment #{i}") for i in campaign.excluded_segment_ids],
            "schedule_form": bootstrap(ScheduleForm(workspace=workspace)),
            "tab": "campaigns",
            "attribution_days": sending_policy(workspace=workspace).attribution_days,
        },
    )


@requires(Capability.VIEW)
def campaign_progress(request: HttpRequest, workspace_slug: str, campaign_id: int) -> HttpResponse:
    workspace = request.workspace
    campaign = selectors.campaign_get(workspace=workspace, campaign_id=campaign_id)
    progress = selectors.campaign_progress(workspace=workspace, campaign=campaign)
    if not is_htmx(request):
        return redirect(ws_reverse(request, "campaigns:detail", campaign_id=campaign.pk))
    response = render(request, "campaigns/campaign_detail.html#progress", {"campaign": campaign, "progress": progress})
    if campaign.status not in (Campaign.Status.SENDING, Campaign.Status.PAUSED):
        response["HX-Refresh"] = "true"  # finished: reload once so the report shows the final numbers
    return response


def _campaign_action(request: HttpRequest, campaign_id: int, action, success: str) -> HttpResponse:
    campaign = selectors.campaign_get(workspace=request.workspace, campaign_id=campaign_id)
    try:
        result = action(workspace=request.workspace, campaign=campaign)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success.format(result=result))
    return redirect(ws_reverse(request, "campaigns:detail", campaign_id=campaign.pk))


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_send(request: HttpRequest, workspace_slug: str, campaign_id: int) -> HttpResponse:
    return _campaign_action(request, campaign_id, services.campaign_launch, "Sending to {result} recipients.")


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_schedule(request: HttpRequest, workspace_slug: str, campaign_id: int) -> HttpResponse:
    workspace = request.workspace
    campaign = selectors.campaign_get(workspace=workspace, campaign_id=campaign_id)
    form = ScheduleForm(request.POST, workspace=workspace)
    if not form.is_valid():
        messages.error(request, "Choose a date and time to send at.")
    else:
        try:
            services.campaign_schedule(workspace=workspace, campaign=campaign, at=form.cleaned_data["scheduled_at"])
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Campaign scheduled.")
    return redirect(ws_reverse(request, "campaigns:detail", campaign_id=campaign.pk))


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_unschedule(request: HttpRequest, workspace_slug: str, campaign_id: int) -> HttpResponse:
    return _campaign_action(request, campaign_id, services.campaign_unschedule, "Back to draft.")


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_pause(request: HttpRequest, workspace_slug: str, campaign_id: int) -> HttpResponse:
    return _campaign_action(
        request, campaign_id, services.campaign_pause, "Paused. Nothing more is sent until you resume."
    )


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_resume(request: HttpRequest, workspace_slug: str, campaign_id: int) -> HttpResponse:
    return _campaign_action(request, campaign_id, services.campaign_resume, "Resumed.")


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_cancel(request: HttpRequest, workspace_slug: str, campaign_id: int) -> HttpResponse:
    return _campaign_action(
        request, campaign_id, services.campaign_cancel, "Cancelled; {result} emails will not be sent."
    )


# --- templates ----------------------------------------------------------------------------------------------


@requires(Capability.VIEW)
def template_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return render(
        request,
        "campaigns/template_list.html",
        {
            "templates": selectors.template_list(workspace=request.workspace),
            "tab": "templates",
        },
    )


@requires(Capability.MANAGE_CAMPAIGNS)
def template_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    return _template_editor(request, None)


@requires(Capability.VIEW)
def template_edit(request: HttpRequest, workspace_slug: str, template_id: int) -> HttpResponse:
    return _template_editor(request, selectors.template_get(workspace=request.workspace, template_id=template_id))


def _template_editor(request: HttpRequest, template: EmailTemplate | None) -> HttpResponse:
    workspace = request.workspace
    default_blocks = [{"type": "text", "text": 'Hi {{ first_name | default: "there" }},\n\n'}]
    blocks = template.blocks if template else default_blocks
    form = bootstrap(TemplateForm(request.POST or None, instance=template))
    test_form = bootstrap(TestSendForm(request.POST or None, initial={"to_email": request.user.email}))
    if request.method == "POST":
        from crm.permissions import role_can

        if not role_can(request.membership.role, Capability.MANAGE_CAMPAIGNS):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied("Your role cannot manage campaigns.")
        blocks = blocks_from_post(request.POST)
        if form.is_valid():
            data = {k: form.cleaned_data[k] for k in form.Meta.fields}
            try:
                saved = services.template_save(
                    workspace=workspace, template=template, user=request.user, blocks=blocks, **data
                )
            except DomainError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                if request.POST.get("send_test"):
                    return _send_test(request, saved, test_form)
                if not request.POST.get("add_block"):
                    messages.success(request, "Template saved.")
                return redirect(ws_reverse(request, "campaigns:template_edit", template_id=saved.pk))
    return render(
        request,
        "campaigns/template_form.html",
        {
            "form": form,
            "template": template,
            "blocks": blocks,
            "test_form": test_form,
            "tab": "templates",
            "merge_fields": MERGE_FIELDS,
            "preview_customers": selectors.preview_customers(workspace=workspace),
            "promo_store": promo_store(workspace=workspace),
        },
    )


def _send_test(request: HttpRequest, template: EmailTemplate, test_form) -> HttpResponse:
    from campaigns.tasks import template_send_test

    if test_form.is_valid():
        customer_id = request.POST.get("preview_customer") or None
        template_send_test.delay(
            request.workspace.pk,
            template.pk,
            test_form.cleaned_data["to_email"],
            int(customer_id) if customer_id and customer_id.isdigit() else None,
        )
        messages.success(request, f"Template saved and a test sent to {test_form.cleaned_data['to_email']}.")
    else:
        messages.error(request, "Template saved, but enter a valid address to send the test to.")
    return redirect(ws_reverse(request, "campaigns:template_edit", template_id=template.pk))


@require_POST
@requires(Capability.VIEW)
def template_preview(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """Render the editor's unsaved content as the chosen customer (htmx swaps the preview pane)."""
    workspace = request.workspace
    form = TemplateForm(request.POST)
    form.is_valid()
    data = {k: form.cleaned_data.get(k, "") or "" for k in form.Meta.fields}
    data["format"] = data["format"] or EmailTemplate.Format.BLOCKS
    context: dict = {}
    try:
        draft = EmailTemplate(workspace=workspace, blocks=services.clean_blocks(blocks_from_post(request.POST)), **data)
        customer = None
        customer_id = request.POST.get("preview_customer", "")
        if customer_id.isdigit():
            customer = Customer.objects.filter(workspace=workspace, pk=int(customer_id)).first()
        context["rendered"] = services.template_preview(workspace=workspace, template=draft, customer=customer)
        context["customer"] = customer
    except DomainError as error:
        context["error"] = error.message
    return render(request, "campaigns/template_form.html#preview", context)


# --- flows --------------------------------------------------------------------------------------------------


@requires(Capability.VIEW)
def flow_list(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    flows = selectors.flow_list(workspace=request.workspace)
    installed = {f.preset for f in flows}
    presets = [(key, spec["name"]) for key, spec in flow_services.PRESETS.items() if key not in installed]
    return render(request, "campaigns/flow_list.html", {"flows": flows, "presets": presets, "tab": "flows"})


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def flow_install(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    keys = request.POST.getlist("preset")
    try:
        for key in keys:
            flow_services.flow_install_preset(workspace=request.workspace, key=key)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{len(keys)} ready-made flow(s) added, switched off: review, then turn them on.")
    return redirect(ws_reverse(request, "campaigns:flow_list"))


@requires(Capability.MANAGE_CAMPAIGNS)
def flow_create(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = bootstrap(FlowForm(request.POST or None))
    if request.method == "POST" and form.is_valid():
        try:
            flow = flow_builder.flow_create(workspace=request.workspace, **_flow_settings(form))
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"“{flow.name}” created. Add its steps, then turn it on.")
            return redirect(ws_reverse(request, "campaigns:flow_detail", flow_id=flow.pk))
    return render(request, "campaigns/flow_form.html", {"form": form, "tab": "flows"})


def _flow_settings(form: FlowForm) -> dict:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "trigger": data["trigger"],
        "trigger_event": data.get("trigger_event") or "",
        "trigger_days": data.get("trigger_days") or 0,
        "goal_event": data.get("goal_event") or "",
        "is_promotional": bool(data.get("is_promotional")),
    }


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def flow_settings(request: HttpRequest, workspace_slug: str, flow_id: int) -> HttpResponse:
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    form = bootstrap(FlowForm(request.POST))
    if form.is_valid():
        try:
            flow_builder.flow_settings_update(workspace=request.workspace, flow=flow, **_flow_settings(form))
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, "Flow settings saved.")
            return redirect(ws_reverse(request, "campaigns:flow_detail", flow_id=flow.pk))
    flow.refresh_from_db()
    return _flow_page(request, flow, settings_form=form, status=400)


@requires(Capability.VIEW)
def flow_detail(request: HttpRequest, workspace_slug: str, flow_id: int) -> HttpResponse:
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    return _flow_page(request, flow)


def _flow_page(request: HttpRequest, flow, *, settings_form=None, error: str = "", status: int = 200) -> HttpResponse:
    workspace = request.workspace
    context = {
        "flow": flow,
        "builder": selectors.flow_builder_rows(workspace=workspace, flow=flow),
        "problems": flow_builder.flow_problems(workspace=workspace, flow=flow),
        "step_error": error,
        "templates": selectors.template_list(workspace=workspace),
        "segments": _segments(workspace),
        "step_kinds": FlowStep.Kind.choices,
        "condition_fields": flow_builder.FIELD_LABELS,
        "condition_ops": flow_builder.OP_LABELS,
        "tab": "flows",
    }
    if request.htmx:
        return render(request, "campaigns/flow_detail.html#steps", context, status=status)
    context["report"] = selectors.flow_report(workspace=workspace, flow=flow)
    context["settings_form"] = settings_form or bootstrap(
        FlowForm(
            initial={
                "name": flow.name,
                "trigger": flow.trigger,
                "trigger_event": flow.trigger_event,
                "trigger_days": flow.trigger_days or None,
                "goal_event": flow.goal_event,
                "is_promotional": flow.is_promotional,
            }
        )
    )
    return render(request, "campaigns/flow_detail.html", context, status=status)


def _steps_answer(request: HttpRequest, flow, *, error: str = "", done: str = "") -> HttpResponse:
    """htmx: the builder's steps again (with the error, if any); otherwise the message and back to the page."""
    if request.htmx:
        return _flow_page(request, flow, error=error, status=200)
    if error:
        messages.error(request, error)
    elif done:
        messages.success(request, done)
    return redirect(ws_reverse(request, "campaigns:flow_detail", flow_id=flow.pk))


def _number(request: HttpRequest, name: str) -> int | None:
    value = request.POST.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 9 else None


def _split_rule(request: HttpRequest) -> dict:
    return flow_builder.condition_from_input(
        workspace=request.workspace,
        segment_id=request.POST.get("segment", ""),
        field=request.POST.get("field", ""),
        op=request.POST.get("op", ""),
        value=request.POST.get("value", ""),
    )


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def flow_step_add(request: HttpRequest, workspace_slug: str, flow_id: int) -> HttpResponse:
    workspace = request.workspace
    flow = selectors.flow_get(workspace=workspace, flow_id=flow_id)
    kind = request.POST.get("kind", "")
    try:
        condition = _split_rule(request) if kind == FlowStep.Kind.CONDITION else None
        flow_builder.flow_step_add(
            workspace=workspace,
            flow=flow,
            kind=kind,
            parent_id=_number(request, "parent"),
            branch=request.POST.get("branch", ""),
            wait_hours=_number(request, "wait_hours"),
            template_id=_number(request, "template"),
            tag=request.POST.get("tag", ""),
            condition=condition,
        )
    except DomainError as error:
        return _steps_answer(request, flow, error=error.message)
    return _steps_answer(request, flow, done="Step added.")


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def flow_step_move(request: HttpRequest, workspace_slug: str, flow_id: int, step_id: int) -> HttpResponse:
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    step = selectors.flow_step_get(workspace=request.workspace, flow=flow, step_id=step_id)
    flow_builder.flow_step_move(workspace=request.workspace, step=step, up=request.POST.get("direction") == "up")
    return _steps_answer(request, flow, done="Step moved.")


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def flow_step_remove(request: HttpRequest, workspace_slug: str, flow_id: int, step_id: int) -> HttpResponse:
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    step = selectors.flow_step_get(workspace=request.workspace, flow=flow, step_id=step_id)
    try:
        removed = flow_builder.flow_step_remove(workspace=request.workspace, step=step)
    except DomainError as error:
        return _steps_answer(request, flow, error=error.message)
    return _steps_answer(request, flow, done=f"{removed} step(s) removed.")


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def flow_step_edit(request: HttpRequest, workspace_slug: str, flow_id: int, step_id: int) -> HttpResponse:
    workspace = request.workspace
    flow = selectors.flow_get(workspace=workspace, flow_id=flow_id)
    step = selectors.flow_step_get(workspace=workspace, flow=flow, step_id=step_id)
    try:
        condition = _split_rule(request) if step.kind == FlowStep.Kind.CONDITION else None
        flow_services.flow_step_update(
            workspace=workspace,
            step=step,
            wait_hours=_number(request, "wait_hours"),
            template_id=_number(request, "template"),
            tag=request.POST.get("tag"),
            condition=condition,
        )
    except DomainError as error:
        return _steps_answer(request, flow, error=error.message)
    return _steps_answer(request, flow, done="Step updated.")


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def flow_toggle(request: HttpRequest, workspace_slug: str, flow_id: int) -> HttpResponse:
    flow = selectors.flow_get(workspace=request.workspace, flow_id=flow_id)
    try:
        flow_services.flow_set_active(workspace=request.workspace, flow=flow, is_active=not flow.is_active)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"“{flow.name}” is now {'off' if flow.is_active else 'on'}.")
    return redirect(ws_reverse(request, "campaigns:flow_detail", flow_id=flow.pk))


# --- settings -----------------------------------------------------------------------------------------------


@requires(Capability.VIEW)
def sending_settings(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    policy = sending_policy(workspace=workspace)
    form = bootstrap(PolicyForm(request.POST or None, instance=policy))
    if request.method == "POST":
        from crm.permissions import role_can

        if not role_can(request.membership.role, Capability.MANAGE_CAMPAIGNS):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied("Your role cannot manage campaigns.")
        if form.is_valid():
            services.policy_update(workspace=workspace, **{k: form.cleaned_data[k] for k in form.Meta.fields})
            messages.success(request, "Sending settings saved.")
            return redirect(ws_reverse(request, "campaigns:settings"))
    return render(
        request,
        "campaigns/settings.html",
        {
            "form": form,
            "suppressions": selectors.suppression_list(workspace=workspace)[:100],
            "tab": "settings",
        },
    )


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def suppression_remove(request: HttpRequest, workspace_slug: str, suppression_id: int) -> HttpResponse:
    suppression = selectors.suppression_get(workspace=request.workspace, suppression_id=suppression_id)
    services.suppression_remove(workspace=request.workspace, suppression_id=suppression.pk)
    messages.success(request, "Address removed from the suppression list.")
    return redirect(ws_reverse(request, "campaigns:settings"))
