from django import forms

from integrations.models import Platform


class ConnectionForm(forms.Form):
    platform = forms.ChoiceField(choices=Platform.choices)
    name = forms.CharField(max_length=120, required=False, help_text="How the store is called here (optional).")
    address = forms.CharField(
        max_length=300,
        label="Store address",
        help_text="Shopify: your-shop.myshopify.com. WooCommerce: the site's address, e.g. https://shop.example.com.",
    )
    access_token = forms.CharField(
        required=False,
        label="Admin API access token (Shopify)",
        widget=forms.PasswordInput(render_value=False),
        help_text="From your Shopify custom app, with read access to customers, products and orders.",
    )
    consumer_key = forms.CharField(required=False, label="Consumer key (WooCommerce)", max_length=200)
    consumer_secret = forms.CharField(
        required=False, label="Consumer secret (WooCommerce)", widget=forms.PasswordInput(render_value=False)
    )
    webhook_secret = forms.CharField(
        required=False,
        label="Webhook secret",
        widget=forms.PasswordInput(render_value=False),
        help_text="Shopify: the app's client secret. WooCommerce: the secret you typed when creating the webhooks.",
    )


class RotateSecretForm(forms.Form):
    webhook_secret = forms.CharField(label="New webhook secret", widget=forms.PasswordInput(render_value=False))


class TrackingForm(forms.Form):
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Storefront origins",
        help_text="One per line, e.g. https://shop.example.com. Events from other origins are refused. "
        "Empty: any origin may send events with this key.",
    )
    abandoned_cart_delay_minutes = forms.IntegerField(
        min_value=5,
        max_value=7 * 24 * 60,
        initial=60,
        label="Abandoned after (minutes)",
        help_text="A checkout with no order after this long records a cart_abandoned event.",
    )
    is_enabled = forms.BooleanField(required=False, initial=True, label="Accept storefront events")
