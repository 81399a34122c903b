import datetime as dt

from django import forms
from django.utils import timezone

from campaigns.flow_builder import GOAL_EVENTS, TRIGGER_EVENTS
from campaigns.models import Campaign, EmailTemplate, Flow, SendingPolicy


class TemplateForm(forms.ModelForm):
    class Meta:
        model = EmailTemplate
        fields = [
            "name",
            "subject",
            "preheader",
            "format",
            "html",
            "promo_code",
            "unique_promo_prefix",
            "unique_promo_percent",
        ]
        widgets = {
            "html": forms.Textarea(attrs={"rows": 14, "class": "font-monospace small"}),
            "format": forms.RadioSelect,
        }
        help_texts = {
            "subject": 'Merge fields work here too, e.g. {{ first_name | default: "there" }}.',
            "html": "Scripts, forms and unknown tags are removed. Links are tracked automatically.",
        }
        labels = {"unique_promo_percent": "Unique code discount (%)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unique_promo_percent"].required = False

    def clean_unique_promo_percent(self) -> int:
        value = self.cleaned_data.get("unique_promo_percent")
        if value is None:
            return self.instance.unique_promo_percent if self.instance.pk else 10
        if not 1 <= value <= 100:
            raise forms.ValidationError("A discount between 1 and 100 percent.")
        return value


def blocks_from_post(data) -> list[dict]:
    """The block editor posts block-<n>-<field>; rebuild the list in order, dropping deleted blocks."""
    indexes = sorted({int(key.split("-")[1]) for key in data if key.startswith("block-") and key.endswith("-type")})
    blocks = []
    for index in indexes:
        prefix = f"block-{index}-"
        if data.get(prefix + "delete"):
            continue
        block = {"type": data.get(prefix + "type", "")}
        for name in ("text", "src", "alt", "href", "label", "url", "source"):
            if prefix + name in data:
                block[name] = data.get(prefix + name, "")
        blocks.append(block)
    kind = data.get("add_block")
    if kind in ("text", "image", "button", "products"):
        blocks.append({"type": kind, **({"source": "recommendations"} if kind == "products" else {})})
    return blocks


class CampaignForm(forms.ModelForm):
    audience_segment_ids = forms.TypedMultipleChoiceField(
        coerce=int, label="Send to these segments", widget=forms.CheckboxSelectMultiple
    )
    excluded_segment_ids = forms.TypedMultipleChoiceField(
        coerce=int, label="But not to these", required=False, widget=forms.CheckboxSelectMultiple
    )
    template = forms.ModelChoiceField(queryset=None, label="Email template")  # set per workspace in __init__

    class Meta:
        model = Campaign
        fields = [
            "name",
            "template",
            "audience_segment_ids",
            "excluded_segment_ids",
            "subject_b",
            "ab_sample_percent",
            "ab_wait_hours",
            "ab_metric",
            "is_promotional",
        ]
        labels = {
            "subject_b": "Subject B (optional A/B test)",
            "ab_sample_percent": "A/B sample (% of the audience)",
            "ab_wait_hours": "Pick the winner after (hours)",
            "ab_metric": "Winner by",
            "is_promotional": "Promotional (hold out customers with an open ticket or a low CSAT)",
        }

    def __init__(self, *args, workspace, segments, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(s.pk, f"{s.name} ({s.size})") for s in segments]
        self.fields["audience_segment_ids"].choices = choices
        self.fields["excluded_segment_ids"].choices = choices
        self.fields["template"].queryset = EmailTemplate.objects.filter(workspace=workspace)

    def clean(self):
        cleaned = super().clean()
        overlap = set(cleaned.get("audience_segment_ids") or []) & set(cleaned.get("excluded_segment_ids") or [])
        if overlap:
            self.add_error("excluded_segment_ids", "A segment cannot be both included and excluded.")
        return cleaned


class ScheduleForm(forms.Form):
    scheduled_at = forms.DateTimeField(
        label="Send at (workspace time)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean_scheduled_at(self) -> dt.datetime:
        value = self.cleaned_data["scheduled_at"]
        # The browser sends a naive local time: it means the workspace's clock, not the server's.
        naive = timezone.make_naive(value, dt.UTC) if timezone.is_aware(value) else value
        return naive.replace(tzinfo=self.workspace.tzinfo)


class TestSendForm(forms.Form):
    to_email = forms.EmailField(label="Send a test to")


class PolicyForm(forms.ModelForm):
    class Meta:
        model = SendingPolicy
        fields = [
            "frequency_cap_hours",
            "quiet_hours_start",
            "quiet_hours_end",
            "hold_out_open_tickets",
            "hold_out_csat_at_most",
            "hold_out_csat_days",
            "attribution_days",
            "from_email",
            "postal_address",
        ]
        widgets = {
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time"}),
        }


def bootstrap(form: forms.BaseForm) -> forms.BaseForm:
    """Give every widget its Bootstrap class, so templates can render ``{{ field }}`` as is."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            widget.attrs.setdefault("class", "form-check-input")
        elif isinstance(widget, (forms.CheckboxSelectMultiple, forms.RadioSelect)):
            widget.attrs.setdefault("class", "form-check-input")
        elif isinstance(widget, forms.Select):
            widget.attrs.setdefault("class", "form-select")
        else:
            widget.attrs["class"] = ("form-control " + widget.attrs.get("class", "")).strip()
    return form


class FlowForm(forms.Form):
    """A custom flow's settings; the rules (unique name, trigger needs an event, goal differs...) are the service's."""

    name = forms.CharField(max_length=120)
    trigger = forms.ChoiceField(label="Starts when", choices=Flow.Trigger.choices)
    trigger_event = forms.ChoiceField(
        label="Event",
        required=False,
        choices=[("", "—")] + list(TRIGGER_EVENTS.items()),
        help_text="For “An event happens”.",
    )
    trigger_days = forms.IntegerField(
        label="Days",
        required=False,
        min_value=0,
        max_value=730,
        help_text="For “N days after the last order”; for back in stock, how far back a view or an add to cart "
        "counts (30 if empty).",
    )
    goal_event = forms.ChoiceField(
        label="Goal: the flow ends when", required=False, choices=[("", "No goal")] + list(GOAL_EVENTS.items())
    )
    is_promotional = forms.BooleanField(
        label="Promotional (frequency cap and support hold-outs apply)", required=False, initial=True
    )
