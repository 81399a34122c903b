import datetime as dt
import re

from django import forms
from django.contrib.auth.password_validation import validate_password

from crm.models import TIMEZONE_CHOICES, Role

WEEKDAYS = [
    (1, "Monday"),
    (2, "Tuesday"),
    (3, "Wednesday"),
    (4, "Thursday"),
    (5, "Friday"),
    (6, "Saturday"),
    (7, "Sunday"),
]


class SignUpForm(forms.Form):
    full_name = forms.CharField(max_length=150, label="Your name")
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, help_text="At least 10 characters, not only digits.")
    workspace_name = forms.CharField(max_length=120, label="Store or brand name")

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            from crm.models import User

            try:
                validate_password(
                    password, user=User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
                )
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class WorkspaceCreateForm(forms.Form):
    name = forms.CharField(max_length=120, label="Store or brand name")


class WorkspaceSettingsForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=60, label="Address", help_text="Used in links: /w/<address>/")
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES)
    currency = forms.CharField(max_length=3, help_text="ISO 4217 code, e.g. USD, EUR, GBP")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for day, label in WEEKDAYS:
            self.fields[f"hours_{day}_start"] = forms.TimeField(required=False, label=f"{label} opens")
            self.fields[f"hours_{day}_end"] = forms.TimeField(required=False, label=f"{label} closes")

    @staticmethod
    def initial_for(workspace) -> dict:
        initial = {
            "name": workspace.name,
            "slug": workspace.slug,
            "timezone": workspace.timezone,
            "currency": workspace.currency,
        }
        for day, _ in WEEKDAYS:
            hours = workspace.business_hours.get(str(day))
            if hours:
                initial[f"hours_{day}_start"], initial[f"hours_{day}_end"] = hours
        return initial

    def clean_currency(self):
        value = self.cleaned_data["currency"].strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise forms.ValidationError("Use a three-letter ISO 4217 code such as USD.")
        return value

    def clean(self):
        cleaned = super().clean()
        hours: dict[str, list[str]] = {}
        for day, label in WEEKDAYS:
            start: dt.time | None = cleaned.get(f"hours_{day}_start")
            end: dt.time | None = cleaned.get(f"hours_{day}_end")
            if start is None and end is None:
                continue
            if start is None or end is None:
                self.add_error(f"hours_{day}_start", f"{label}: give both an opening and a closing time, or neither.")
                continue
            if end <= start:
                self.add_error(f"hours_{day}_end", f"{label}: closing time must be after opening time.")
                continue
            hours[str(day)] = [start.strftime("%H:%M"), end.strftime("%H:%M")]
        cleaned["business_hours"] = hours
        return cleaned

    def weekday_rows(self):
        return [(label, self[f"hours_{day}_start"], self[f"hours_{day}_end"]) for day, label in WEEKDAYS]


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
