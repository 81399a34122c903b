import datetime as dt

from django import forms

from analytics.selectors import DateRange

PERIODS = [
    ("7", "Last 7 days"),
    ("30", "Last 30 days"),
    ("90", "Last 90 days"),
    ("365", "Last 12 months"),
    ("custom", "Custom range"),
]
GRAINS = [("day", "Daily"), ("week", "Weekly"), ("month", "Monthly")]
MAX_RANGE_DAYS = 3 * 366


class RangeForm(forms.Form):
    """The period every analytics page shows: a preset ending today (workspace time) or a custom range."""

    period = forms.ChoiceField(choices=PERIODS, required=False)
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    grain = forms.ChoiceField(choices=GRAINS, required=False)

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self):
        data = super().clean()
        period = data.get("period") or "30"
        data["period"] = period
        if period == "custom":
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError("Choose both a start and an end date for a custom range.")
            if end < start:
                raise forms.ValidationError("The end date must be on or after the start date.")
            if (end - start).days + 1 > MAX_RANGE_DAYS:
                raise forms.ValidationError("Choose a range of at most three years.")
        else:
            end = self.today
            start = end - dt.timedelta(days=int(period) - 1)
        data["range"] = DateRange(start=start, end=end)
        days = data["range"].days
        data["grain"] = data.get("grain") or ("day" if days <= 45 else "week" if days <= 200 else "month")
        return data


def range_from_request(query, *, today: dt.date) -> tuple[RangeForm, DateRange, str]:
    form = RangeForm(query or None, today=today)
    if form.is_valid():
        return form, form.cleaned_data["range"], form.cleaned_data["grain"]
    default = DateRange(start=today - dt.timedelta(days=29), end=today)
    return form, default, "day"
