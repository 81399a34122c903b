"""Workspace pages of support: the inbox, a ticket, the dashboard and the support settings.

Every action on a ticket answers an htmx request with the re-rendered ticket pane plus an ``HX-Trigger:
tickets-changed`` header that makes the inbox list refresh itself, so a rep never leaves the inbox; without htmx
the same POST redirects back to the ticket page.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from crm.exceptions import DomainError
from crm.models import Membership
from crm.permissions import Capability, requires, role_can
from crm.urls_helpers import ws_reverse
from support import routing, selectors, services
from support.dashboard import support_dashboard
from support.forms import (
    CannedReplyForm,
    PropertiesForm,
    ReplyForm,
    RuleForm,
    SlaForm,
    SupportSettingsForm,
    TeamForm,
    TicketCreateForm,
    incoming_files,
)
from support.models import (
    CannedReply,
    RoutingRule,
    Team,
    TicketChannel,
    TicketPriority,
    TicketStatus,
)

INBOX_VIEWS = ("mine", "unassigned", "team", "overdue", "all")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _filters(request: HttpRequest) -> selectors.InboxFilters:
    data = request.GET
    view = data.get("view") or "mine"
    return selectors.InboxFilters(
        view=view if view in INBOX_VIEWS else "mine",
        team_id=_int(data.get("team")),
        q=data.get("q", "").strip()[:100],
        status=data.get("status", "") if data.get("status", "") in ("", "any", *TicketStatus.values) else "",
        priority=data.get("priority", "") if data.get("priority", "") in TicketPriority.values else "",
        channel=data.get("channel", "") if data.get("channel", "") in TicketChannel.values else "",
        category=data.get("category", "").strip()[:60],
        tag=data.get("tag", "").strip()[:50],
        assignee_id=_int(data.get("assignee")),
        customer_id=_int(data.get("customer")),
    )


def _list_context(request: HttpRequest, filters: selectors.InboxFilters) -> dict:
    workspace = request.workspace
    query = {k: v for k, v in request.GET.items() if v and k != "page"}
    tickets = selectors.inbox_page(workspace=workspace, membership=request.membership, filters=filters)
    return {
        "tickets": tickets,
        "filters": filters,
        "query_string": urlencode(query),
        "list_url": ws_reverse(request, "support:inbox") + (f"?{urlencode(query)}" if query else ""),
        "counts": selectors.inbox_counts(workspace=workspace, membership=request.membership),
        "reps": selectors.reps_for(workspace=workspace),
        "status_choices": TicketStatus.choices,
        "priority_choices": TicketPriority.choices,
        "channel_choices": TicketChannel.choices,
        "categories": services.support_settings_for(workspace=workspace).category_choices,
    }


def inbox(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    filters = _filters(request)
    context = _list_context(request, filters)
    if request.htmx and request.htmx.target == "ticket-list":
        response = render(request, "support/inbox.html#ticket_list", context)
    else:
        open_id = _int(request.GET.get("ticket"))
        if open_id:
            context.update(_pane_context(request, selectors.ticket_get(workspace=request.workspace, ticket_id=open_id)))
        response = render(request, "support/inbox.html", context)
    response["Vary"] = "HX-Request"
    return response


def _pane_context(request: HttpRequest, ticket, reply_form: ReplyForm | None = None) -> dict:
    workspace = request.workspace
    return {
        "ticket": ticket,
        "conversation": selectors.ticket_conversation(workspace=workspace, ticket=ticket),
        "customer_context": selectors.customer_context(workspace=workspace, ticket=ticket),
        "reps": selectors.reps_for(workspace=workspace),
        "teams": Team.objects.filter(workspace=workspace),
        "canned_replies": selectors.canned_replies_for(workspace=workspace),
        "reply_form": reply_form or ReplyForm(),
        "status_choices": TicketStatus.choices,
        "priority_choices": TicketPriority.choices,
        "categories": services.support_settings_for(workspace=workspace).category_choices,
        "linkable_orders": selectors.customer_orders_for_linking(workspace=workspace, customer_id=ticket.customer_id),
        "tag_text": ", ".join(tag.name for tag in ticket.tags.all()),
        "can_work": role_can(request.membership.role, Capability.WORK_TICKETS),
    }


def _pane_response(request: HttpRequest, ticket, *, reply_form: ReplyForm | None = None, status: int = 200):
    ticket = selectors.ticket_get(workspace=request.workspace, ticket_id=ticket.pk)
    if request.htmx:
        response = render(
            request, "support/ticket.html#ticket_pane", _pane_context(request, ticket, reply_form), status=status
        )
        response["HX-Trigger"] = "tickets-changed"
        return response
    if status != 200:
        return render(request, "support/ticket.html", _pane_context(request, ticket, reply_form), status=status)
    return redirect(ws_reverse(request, "support:ticket", ticket_id=ticket.pk))


def ticket_detail(request: HttpRequest, workspace_slug: str, ticket_id: int) -> HttpResponse:
    ticket = selectors.ticket_get(workspace=request.workspace, ticket_id=ticket_id)
    template = "support/ticket.html#ticket_pane" if request.htmx else "support/ticket.html"
    response = render(request, template, _pane_context(request, ticket))
    response["Vary"] = "HX-Request"
    return response


@requires(Capability.WORK_TICKETS)
def ticket_new(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    form = TicketCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        from support.inbound import customer_for_email

        try:
            customer = customer_for_email(workspace=workspace, email_address=data["email"].lower(), name=data["name"])
            ticket = services.ticket_create(
                workspace=workspace,
                subject=data["subject"],
                body_text=data["body"],
                customer=customer,
                requester_email=data["email"],
                requester_name=data["name"],
                channel=data["channel"],
                priority=data["priority"],
                category=data["category"],
                created_by=request.user,
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Ticket #{ticket.number} opened.")
            return redirect(ws_reverse(request, "support:ticket", ticket_id=ticket.pk))
    return render(request, "support/ticket_new.html", {"form": form})


@require_POST
@requires(Capability.WORK_TICKETS)
def ticket_reply(request: HttpRequest, workspace_slug: str, ticket_id: int) -> HttpResponse:
    ticket = selectors.ticket_get(workspace=request.workspace, ticket_id=ticket_id)
    form = ReplyForm(request.POST, request.FILES)
    is_note = request.POST.get("kind") == "note"
    if not form.is_valid():
        return _pane_response(request, ticket, reply_form=form, status=422)
    try:
        if is_note:
            services.ticket_note_add(
                workspace=request.workspace,
                ticket=ticket,
                author=request.user,
                body=form.cleaned_data["body"],
                attachments=incoming_files(form.cleaned_data["attachments"]),
            )
        else:
            then = request.POST.get("then_status") or None
            services.ticket_reply(
                workspace=request.workspace,
                ticket=ticket,
                author=request.user,
                body=form.cleaned_data["body"],
                attachments=incoming_files(form.cleaned_data["attachments"]),
                then_status=then if then in TicketStatus.values else None,
            )
    except DomainError as error:
        form.add_error("body" if error.field in (None, "body") else "attachments", error.message)
        return _pane_response(request, ticket, reply_form=form, status=422)
    if not request.htmx:
        messages.success(request, "Note added." if is_note else "Reply sent.")
    return _pane_response(request, ticket)


@require_POST
@requires(Capability.WORK_TICKETS)
def ticket_assign(request: HttpRequest, workspace_slug: str, ticket_id: int) -> HttpResponse:
    workspace = request.workspace
    ticket = selectors.ticket_get(workspace=workspace, ticket_id=ticket_id)
    assignee_value = request.POST.get("assignee", "")
    assignee = None
    if assignee_value == "me":
        assignee = request.membership
    elif assignee_value:
        assignee = Membership.objects.filter(workspace=workspace, pk=_int(assignee_value) or 0).first()
        if assignee is None:
            messages.error(request, "Unknown member.")
            return _pane_response(request, ticket)
    team = Team.objects.filter(workspace=workspace, pk=_int(request.POST.get("team")) or 0).first()
    try:
        services.ticket_assign(workspace=workspace, ticket=ticket, assignee=assignee, team=team, actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    return _pane_response(request, ticket)


@require_POST
@requires(Capability.WORK_TICKETS)
def ticket_status(request: HttpRequest, workspace_slug: str, ticket_id: int) -> HttpResponse:
    ticket = selectors.ticket_get(workspace=request.workspace, ticket_id=ticket_id)
    try:
        services.ticket_status_set(
            workspace=request.workspace, ticket=ticket, status=request.POST.get("status", ""), actor=request.user
        )
    except DomainError as error:
        messages.error(request, error.message)
    return _pane_response(request, ticket)


@require_POST
@requires(Capability.WORK_TICKETS)
def ticket_properties(request: HttpRequest, workspace_slug: str, ticket_id: int) -> HttpResponse:
    workspace = request.workspace
    ticket = selectors.ticket_get(workspace=workspace, ticket_id=ticket_id)
    form = PropertiesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return _pane_response(request, ticket)
    data = form.cleaned_data
    order = None
    if data["order_id"]:
        order = next(
            (
                o
                for o in selectors.customer_orders_for_linking(workspace=workspace, customer_id=ticket.customer_id)
                if o.pk == data["order_id"]
            ),
            None,
        )
        if order is None:
            messages.error(request, "That order is not one of this customer's.")
            return _pane_response(request, ticket)
    try:
        services.ticket_properties_update(
            workspace=workspace,
            ticket=ticket,
            priority=data["priority"],
            category=data["category"],
            tags=data["tags"].split(","),
            order=order,
            clear_order=not data["order_id"],
        )
    except DomainError as error:
        messages.error(request, error.message)
    return _pane_response(request, ticket)


@require_GET
@requires(Capability.WORK_TICKETS)
def canned_reply_fill(request: HttpRequest, workspace_slug: str, ticket_id: int, canned_id: int) -> HttpResponse:
    """The canned reply with its merge fields filled for this ticket, as the reply textarea (htmx swaps it in)."""
    ticket = selectors.ticket_get(workspace=request.workspace, ticket_id=ticket_id)
    canned = CannedReply.objects.filter(workspace=request.workspace, pk=canned_id).first()
    if canned is None:
        raise Http404("No such canned reply")
    text = services.canned_reply_render(canned=canned, ticket=ticket, agent=request.user)
    if request.htmx:
        return render(request, "support/ticket.html#reply_textarea", {"ticket": ticket, "body": text})
    return JsonResponse({"body": text})


@require_POST
@requires(Capability.WORK_TICKETS)
def tickets_bulk(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    """One action on the checked tickets: ``assign:<membership id>``, ``assign:none`` or ``status:<status>``."""
    workspace = request.workspace
    ids = [value for value in (_int(v) for v in request.POST.getlist("ticket_ids")) if value]
    kind, _, value = request.POST.get("action", "").partition(":")
    assignee, unassign, status = None, False, None
    if kind == "assign" and value == "none":
        unassign = True
    elif kind == "assign":
        assignee = Membership.objects.filter(workspace=workspace, pk=_int(value) or 0).first()
    elif kind == "status" and value in TicketStatus.values:
        status = value
    if not ids:
        messages.error(request, "Select tickets first.")
    elif assignee is None and not unassign and status is None:
        messages.error(request, "Choose an action: whom to assign to, or which status to set.")
    else:
        try:
            result = services.tickets_bulk_update(
                workspace=workspace,
                ticket_ids=ids,
                actor=request.user,
                assignee=assignee,
                unassign=unassign,
                status=status,
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{result.changed} ticket{'s' if result.changed != 1 else ''} updated.")
    if not request.htmx:
        return redirect(ws_reverse(request, "support:inbox") + (f"?{request.GET.urlencode()}" if request.GET else ""))
    context = _list_context(request, _filters(request))
    context["oob_messages"] = True
    return render(request, "support/inbox.html#ticket_list", context)


def attachment_download(request: HttpRequest, workspace_slug: str, attachment_id: int) -> HttpResponse:
    attachment = selectors.attachment_get(workspace=request.workspace, attachment_id=attachment_id)
    inline = attachment.content_type in ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=not inline,
        filename=attachment.filename,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response


def dashboard(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    days = _int(request.GET.get("days")) or 30
    days = days if days in (7, 30, 90) else 30
    data = support_dashboard(workspace=request.workspace, days=days)
    return render(request, "support/dashboard.html", {"data": data, "days": days})


# --- Settings -----------------------------------------------------------------------------------------------------


def _settings_context(request: HttpRequest, **forms) -> dict:
    workspace = request.workspace
    config = services.support_settings_for(workspace=workspace)
    teams = list(selectors.teams_for(workspace=workspace))
    reps = list(selectors.reps_for(workspace=workspace))
    targets = {p: services.sla_targets(workspace=workspace, priority=p) for p in TicketPriority.values}
    segments = []
    try:
        from django.apps import apps

        segments = list(apps.get_model("segments", "Segment").objects.filter(workspace=workspace))
    except LookupError:
        pass
    return {
        "config": config,
        "settings_form": forms.get("settings_form")
        or SupportSettingsForm(
            teams=teams,
            initial={
                "reply_to_email": config.reply_to_email,
                "categories": "\n".join(config.category_choices),
                "default_team": config.default_team_id,
                "is_csat_enabled": config.is_csat_enabled,
                "csat_delay_minutes": config.csat_delay_minutes,
                "is_nps_enabled": config.is_nps_enabled,
                "nps_delay_days": config.nps_delay_days,
            },
        ),
        "sla_form": forms.get("sla_form") or SlaForm(targets=targets),
        "team_form": forms.get("team_form") or TeamForm(reps=reps),
        "rule_form": forms.get("rule_form") or RuleForm(teams=teams, segments=segments),
        "canned_form": forms.get("canned_form") or CannedReplyForm(),
        "teams": teams,
        "reps": reps,
        "rules": selectors.routing_rules_for(workspace=workspace),
        "canned_replies": selectors.canned_replies_for(workspace=workspace),
        "segments": {s.pk: str(s) for s in segments},
        "inbound_url": request.build_absolute_uri(f"/support/inbound/{config.inbound_token}/postmark/"),
        "contact_url": request.build_absolute_uri(f"/support/contact/{request.workspace.slug}/"),
    }


@requires(Capability.MANAGE_SUPPORT)
def support_settings(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    if request.method != "POST":
        return render(request, "support/settings.html", _settings_context(request))
    section = request.POST.get("section")
    teams = list(selectors.teams_for(workspace=workspace))
    if section == "general":
        form = SupportSettingsForm(request.POST, teams=teams)
        if not form.is_valid():
            return render(request, "support/settings.html", _settings_context(request, settings_form=form), status=422)
        data = form.cleaned_data
        services.support_settings_update(
            workspace=workspace,
            reply_to_email=data["reply_to_email"],
            categories=data["categories"].splitlines(),
            default_team=next((t for t in teams if t.pk == data["default_team"]), None),
            is_csat_enabled=data["is_csat_enabled"],
            csat_delay_minutes=data["csat_delay_minutes"],
            is_nps_enabled=data["is_nps_enabled"],
            nps_delay_days=data["nps_delay_days"],
        )
    elif section == "sla":
        targets = {p: services.sla_targets(workspace=workspace, priority=p) for p in TicketPriority.values}
        form = SlaForm(request.POST, targets=targets)
        try:
            if not form.is_valid():
                raise DomainError("Every target must be a whole number of minutes, at least 1.")
            services.sla_policies_save(workspace=workspace, targets=form.targets())
        except DomainError as error:
            form.add_error(None, error.message)
            return render(request, "support/settings.html", _settings_context(request, sla_form=form), status=422)
    elif section == "team":
        form = TeamForm(request.POST, reps=selectors.reps_for(workspace=workspace))
        try:
            if not form.is_valid():
                raise DomainError("Give the team a name.")
            team = Team.objects.filter(workspace=workspace, pk=_int(request.POST.get("team_id")) or 0).first()
            services.team_save(
                workspace=workspace, name=form.cleaned_data["name"], member_ids=form.cleaned_data["members"], team=team
            )
        except DomainError as error:
            form.add_error(None, error.message)
            return render(request, "support/settings.html", _settings_context(request, team_form=form), status=422)
    elif section == "rule":
        form = RuleForm(request.POST, teams=teams, segments=[])
        form.fields["segment_id"].choices = [
            ("", "—"),
            *[(k, v) for k, v in _settings_context(request)["segments"].items()],
        ]
        try:
            if not form.is_valid():
                raise DomainError("; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
            data = form.cleaned_data
            routing.routing_rule_save(
                workspace=workspace,
                name=data["name"],
                condition=data["condition"],
                value=data["value"],
                team=next(t for t in teams if t.pk == data["team"]),
                segment_id=data["segment_id"],
                set_priority=data["set_priority"],
            )
        except DomainError as error:
            form.add_error(None, error.message)
            return render(request, "support/settings.html", _settings_context(request, rule_form=form), status=422)
    elif section == "canned":
        form = CannedReplyForm(request.POST)
        try:
            if not form.is_valid():
                raise DomainError("A canned reply needs a title and a body.")
            services.canned_reply_save(workspace=workspace, **form.cleaned_data)
        except DomainError as error:
            form.add_error(None, error.message)
            return render(request, "support/settings.html", _settings_context(request, canned_form=form), status=422)
    messages.success(request, "Saved.")
    return redirect(ws_reverse(request, "support:settings"))


@require_POST
@requires(Capability.MANAGE_SUPPORT)
def rule_action(request: HttpRequest, workspace_slug: str, rule_id: int) -> HttpResponse:
    rule = RoutingRule.objects.filter(workspace=request.workspace, pk=rule_id).first()
    if rule is None:
        raise Http404("No such rule")
    action = request.POST.get("action")
    if action == "delete":
        routing.routing_rule_delete(workspace=request.workspace, rule=rule)
    elif action in ("up", "down"):
        routing.routing_rule_move(workspace=request.workspace, rule=rule, up=action == "up")
    elif action == "toggle":
        routing.routing_rule_set_active(workspace=request.workspace, rule=rule, is_active=not rule.is_active)
    return redirect(ws_reverse(request, "support:settings") + "#rules")


@require_POST
@requires(Capability.MANAGE_SUPPORT)
def team_delete(request: HttpRequest, workspace_slug: str, team_id: int) -> HttpResponse:
    team = Team.objects.filter(workspace=request.workspace, pk=team_id).first()
    if team is None:
        raise Http404("No such team")
    services.team_delete(workspace=request.workspace, team=team)
    return redirect(ws_reverse(request, "support:settings") + "#teams")


@require_POST
@requires(Capability.MANAGE_SUPPORT)
def canned_delete(request: HttpRequest, workspace_slug: str, canned_id: int) -> HttpResponse:
    canned = CannedReply.objects.filter(workspace=request.workspace, pk=canned_id).first()
    if canned is None:
        raise Http404("No such canned reply")
    services.canned_reply_delete(workspace=request.workspace, canned=canned)
    return redirect(ws_reverse(request, "support:settings") + "#canned")
