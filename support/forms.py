import time

from django import forms
from django.core import signing

from support.models import RuleCondition, TicketChannel, TicketPriority
from support.services import IncomingFile


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if not data:
            return []
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


def incoming_files(uploaded) -> list[IncomingFile]:
    return [
        IncomingFile(filename=f.name, content_type=f.content_type or "application/octet-stream", content=f.read())
        for f in uploaded or []
    ]


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea, max_length=50_000)
    attachments = MultipleFileField()


class TicketCreateForm(forms.Form):
    """A rep opens a ticket on a customer's behalf (a phone call, a chat)."""

    email = forms.EmailField(label="Customer email")
    name = forms.CharField(max_length=150, required=False)
    subject = forms.CharField(max_length=255)
    body = forms.CharField(widget=forms.Textarea, max_length=50_000, label="What the customer said")
    channel = forms.ChoiceField(choices=TicketChannel.choices, initial=TicketChannel.PHONE)
    priority = forms.ChoiceField(choices=TicketPriority.choices, initial=TicketPriority.NORMAL)
    category = forms.CharField(max_length=60, required=False)


class PropertiesForm(forms.Form):
    priority = forms.ChoiceField(choices=TicketPriority.choices)
    category = forms.CharField(max_length=60, required=False)
    tags = forms.CharField(max_length=500, required=False, help_text="Comma separated")
    order_id = forms.IntegerField(required=False)


class ContactForm(forms.Form):
    """The public contact form. ``website`` is a honeypot (hidden from people, filled by bots); ``started`` is a
    signed timestamp: a submission faster than MIN_SECONDS after the page was served is a bot."""

    MIN_SECONDS = 3
    MAX_AGE_SECONDS = 24 * 3600
    SALT = "support.contact"

    name = forms.CharField(max_length=150)
    email = forms.EmailField()
    order_number = forms.CharField(max_length=50, required=False, label="Order number (optional)")
    subject = forms.CharField(max_length=200)
    message = forms.CharField(widget=forms.Textarea, max_length=10_000)
    website = forms.CharField(required=False)
    started = forms.CharField(widget=forms.HiddenInput)

    @classmethod
    def stamp(cls) -> str:
        return signing.dumps(time.time(), salt=cls.SALT)

    def clean(self):
        data = super().clean()
        if data.get("website"):
            raise forms.ValidationError("Your message could not be sent.", code="spam")
        try:
            started = float(signing.loads(data.get("started", ""), salt=self.SALT, max_age=self.MAX_AGE_SECONDS))
        except (signing.BadSignature, TypeError, ValueError):
            raise forms.ValidationError(
                "This form has expired; reload the page and try again.", code="expired"
            ) from None
        if time.time() - started < self.MIN_SECONDS:
            raise forms.ValidationError("That was quick! Please wait a moment and send again.", code="too_fast")
        return data


class SurveyCommentForm(forms.Form):
    score = forms.IntegerField(min_value=0, max_value=10)
    comment = forms.CharField(widget=forms.Textarea, max_length=2000, required=False)


class SlaForm(forms.Form):
    def __init__(self, *args, targets: dict[str, tuple[int, int]], **kwargs):
        super().__init__(*args, **kwargs)
        for priority, label in TicketPriority.choices:
            first, resolution = targets[priority]
            self.fields[f"{priority}_first"] = forms.IntegerField(
                min_value=1, initial=first, label=f"{label}: first response (business minutes)"
            )
            self.fields[f"{priority}_resolution"] = forms.IntegerField(
                min_value=1, initial=resolution, label=f"{label}: resolution (business minutes)"
            )

    def targets(self) -> dict[str, tuple[int, int]]:
        return {
            priority: (self.cleaned_data[f"{priority}_first"], self.cleaned_data[f"{priority}_resolution"])
            for priority in TicketPriority.values
        }


class SupportSettingsForm(forms.Form):
    reply_to_email = forms.EmailField(required=False, label="Reply-to address (your inbound support address)")
    categories = forms.CharField(required=False, help_text="One per line", widget=forms.Textarea(attrs={"rows": 4}))
    default_team = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    is_csat_enabled = forms.BooleanField(required=False, label="Send a CSAT survey after a ticket is solved")
    csat_delay_minutes = forms.IntegerField(min_value=0, max_value=60 * 24 * 14, label="CSAT delay (minutes)")
    is_nps_enabled = forms.BooleanField(required=False, label="Send an NPS survey after an order")
    nps_delay_days = forms.IntegerField(min_value=0, max_value=365, label="NPS delay (days after the order)")

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_team"].choices = [("", "— none —"), *[(t.pk, t.name) for t in teams]]


class TeamForm(forms.Form):
    name = forms.CharField(max_length=80)
    members = forms.TypedMultipleChoiceField(coerce=int, required=False)

    def __init__(self, *args, reps=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].choices = [(m.pk, m.user.display_name) for m in reps]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100, required=False)
    condition = forms.ChoiceField(choices=RuleCondition.choices)
    value = forms.CharField(max_length=100, required=False)
    segment_id = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    team = forms.TypedChoiceField(coerce=int)
    set_priority = forms.ChoiceField(choices=[("", "keep"), *TicketPriority.choices], required=False)

    def __init__(self, *args, teams=(), segments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [(t.pk, t.name) for t in teams]
        self.fields["segment_id"].choices = [("", "—"), *[(s.pk, str(s)) for s in segments]]


class CannedReplyForm(forms.Form):
    title = forms.CharField(max_length=100)
    body = forms.CharField(widget=forms.Textarea)
