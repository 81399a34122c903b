from django import forms

from customers.models import ConsentStatus, Customer, Gender
from customers.normalize import InvalidValue, normalize_country, normalize_email, normalize_phone
from customers.selectors import DEFAULT_SORT, SORTS, CustomerFilters

YES_NO = [("", "Any"), ("yes", "Has ordered"), ("no", "Never ordered")]


class CustomerFilterForm(forms.Form):
    """The customer list's query string. Invalid values are dropped (a bad bookmark still shows a list)."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    tag = forms.CharField(required=False, max_length=64)
    country = forms.CharField(required=False, max_length=2)
    email_consent = forms.ChoiceField(
        required=False, choices=[("", "Any"), *ConsentStatus.choices], label="Email consent"
    )
    sms_consent = forms.ChoiceField(required=False, choices=[("", "Any"), *ConsentStatus.choices], label="SMS consent")
    ordered = forms.ChoiceField(required=False, choices=YES_NO, label="Orders")
    spent_min = forms.DecimalField(required=False, min_value=0, max_digits=14, decimal_places=2, label="Spent from")
    spent_max = forms.DecimalField(required=False, min_value=0, max_digits=14, decimal_places=2, label="Spent to")
    last_order_from = forms.DateField(required=False, label="Last order from")
    last_order_to = forms.DateField(required=False, label="Last order to")
    rfm_group = forms.CharField(required=False, max_length=30, label="RFM group")
    sort = forms.ChoiceField(required=False, choices=[(key, label) for key, (label, _) in SORTS.items()])

    def to_filters(self) -> CustomerFilters:
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        ordered = data.get("ordered")
        return CustomerFilters(
            search=data.get("q") or "",
            tag=data.get("tag") or "",
            country=(data.get("country") or "").upper(),
            email_consent=data.get("email_consent") or "",
            sms_consent=data.get("sms_consent") or "",
            has_ordered=True if ordered == "yes" else False if ordered == "no" else None,
            spent_min=data.get("spent_min"),
            spent_max=data.get("spent_max"),
            last_order_from=data.get("last_order_from"),
            last_order_to=data.get("last_order_to"),
            rfm_group=data.get("rfm_group") or "",
            sort=data.get("sort") or DEFAULT_SORT,
        )


class BulkTagForm(forms.Form):
    action = forms.ChoiceField(choices=[("add", "Add tag"), ("remove", "Remove tag")])
    tag_name = forms.CharField(max_length=64, label="Tag")
    customer_ids = forms.TypedMultipleChoiceField(coerce=int, required=False)
    apply_to_all = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any integer is acceptable here; the service only touches ids of the current workspace.
        self.fields["customer_ids"].valid_value = lambda value: str(value).isdigit()  # type: ignore[attr-defined]

    def clean(self):
        data = super().clean()
        if not data.get("apply_to_all") and not data.get("customer_ids"):
            raise forms.ValidationError("Select at least one customer.")
        return data


class NoteForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=10000, label="Note")
    is_pinned = forms.BooleanField(required=False, label="Pin")


class CustomerProfileForm(forms.ModelForm):
    """Profile editing: the email is validated and lowercased, the phone normalised to E.164 (a number without
    a country prefix is read in the customer's country)."""

    class Meta:
        model = Customer
        fields = [
            "first_name",
            "last_name",
            "email",
            "phone",
            "birth_date",
            "gender",
            "address_line",
            "city",
            "region",
            "postcode",
            "country",
            "language",
            "loyalty_points",
        ]
        widgets = {"birth_date": forms.DateInput(attrs={"type": "date"})}

    gender = forms.ChoiceField(choices=Gender.choices, required=False)
    email = forms.CharField(required=False, max_length=254)

    def clean_email(self) -> str:
        try:
            return normalize_email(self.cleaned_data.get("email"))
        except InvalidValue as error:
            raise forms.ValidationError(str(error)) from error

    def clean_country(self) -> str:
        try:
            return normalize_country(self.cleaned_data.get("country"))
        except InvalidValue as error:
            raise forms.ValidationError(str(error)) from error

    def clean(self):
        data = super().clean()
        phone = data.get("phone")
        if phone:
            try:
                data["phone"] = normalize_phone(phone, default_region=data.get("country") or "US")
            except InvalidValue as error:
                self.add_error("phone", str(error))
        return data


class ConsentForm(forms.Form):
    channel = forms.ChoiceField(choices=[("email", "Email"), ("sms", "SMS")])
    status = forms.ChoiceField(choices=ConsentStatus.choices)
