import re
from urllib.parse import parse_qs, urlparse

import pytest

from campaigns.rendering import blocks_to_html, compile_email, link_signature, parse_merge_field, render_email
from crm.exceptions import DomainError

CONTEXT = {"first_name": "Ann", "loyalty_points": 120, "_token": "TOKEN123", "_site_url": "https://crm.example"}


def render(body: str, subject: str = "Hi", context: dict | None = None, **kwargs):
    compiled = compile_email(subject=subject, preheader="", body_html=body, shop_name="Acme", **kwargs)
    return render_email(compiled, context if context is not None else CONTEXT)


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [
        ("{{ first_name }}", {"first_name": "Ann"}, "Ann"),
        ('{{ first_name | default: "there" }}', {"first_name": ""}, "there"),
        ('{{ first_name | default: "there" }}', {}, "there"),
        ("{{first_name|upper}}", {"first_name": "Ann"}, "ANN"),
        ("{{ top_category | lower }}", {"top_category": "Shoes"}, "shoes"),
        ('{{ first_name | default: "friend" | capitalize }}', {"first_name": ""}, "Friend"),
        ("{{ loyalty_points }} points", {"loyalty_points": 120}, "120 points"),
    ],
)
def test_merge_fields_and_fallbacks_in_the_subject(template, context, expected):
    assert render("<p>x</p>", subject=template, context=context | {"_token": "t", "_site_url": "s"}).subject == expected


@pytest.mark.parametrize(
    "template",
    [
        "{{ workspace.settings }}",
        "{{ first_name.__class__ }}",
        "{{ settings.SECRET_KEY }}",
        "{{ request }}",
        "{{ first_name | safe }}",
        "{% load static %}{{ password }}",
    ],
)
def test_the_sandbox_refuses_anything_outside_the_whitelist(template):
    with pytest.raises(DomainError) as error:
        compile_email(subject="Hi", preheader="", body_html=f"<p>{template}</p>", shop_name="Acme")
    assert "Unknown" in error.value.message


def test_django_template_syntax_is_inert_text():
    rendered = render("<p>{% if 1 %}yes{% endif %} {{ first_name }}</p>")
    assert "{% if 1 %}yes{% endif %} Ann" in rendered.html


def test_merge_values_are_escaped_in_html_and_plain_in_text():
    rendered = render("<p>Hi {{ first_name }}</p>", context=CONTEXT | {"first_name": "<script>x</script>"})
    assert "<script>x</script>" not in rendered.html
    assert "Hi &lt;script&gt;x&lt;/script&gt;" in rendered.html
    assert "Hi <script>x</script>" in rendered.text


def test_tenant_html_is_sanitised():
    rendered = render(
        '<p onclick="steal()">Hello</p><script>alert(1)</script><a href="javascript:alert(1)">x</a>'
        '<iframe src="https://evil.example"></iframe><img src="https://img.example/a.png" onerror="x()">'
        '<form action="https://evil.example"><input name="card"></form>'
    )
    html = rendered.html
    assert "onclick" not in html and "<script" not in html.lower() and "javascript:" not in html
    assert "<iframe" not in html and "onerror" not in html and "<form" not in html and "<input" not in html
    assert '<img src="https://img.example/a.png"' in html


def test_css_is_inlined_for_email_clients():
    rendered = render("<p>Hello</p>")
    assert "<style" not in rendered.html
    assert re.search(r'<p style="[^"]*font-size: 16px', rendered.html)


def test_plain_text_part_is_generated_with_links_and_unsubscribe():
    rendered = render(
        blocks_to_html(
            [
                {"type": "text", "text": "# Welcome {{ first_name }}\n\nFirst paragraph."},
                {"type": "button", "label": "Shop", "url": "https://shop.example/new"},
            ]
        )
    )
    assert rendered.text.startswith("Welcome Ann\n\nFirst paragraph.")
    assert "Shop (https://shop.example/new)" in rendered.text
    assert rendered.text.endswith("Unsubscribe: https://crm.example/e/u/TOKEN123/")


def test_links_are_wrapped_in_signed_click_redirects_and_pixel_and_unsubscribe_added():
    rendered = render('<p><a href="https://shop.example/p?id=1&amp;c={{ first_name }}">Buy</a></p>')
    hrefs = re.findall(r'href="([^"]+)"', rendered.html)
    click = next(h for h in hrefs if "/e/c/" in h).replace("&amp;", "&")
    parsed = urlparse(click)
    assert parsed.path == "/e/c/TOKEN123/"
    query = parse_qs(parsed.query)
    assert query["u"] == ["https://shop.example/p?id=1&c=Ann"]
    assert query["s"] == [link_signature("https://shop.example/p?id=1&c=Ann")]
    assert "https://crm.example/e/u/TOKEN123/" in hrefs
    assert '<img src="https://crm.example/e/o/TOKEN123.gif"' in rendered.html


def test_untracked_render_keeps_links_and_has_no_pixel():
    rendered = render('<p><a href="https://shop.example/">Buy</a></p>', track=False)
    assert 'href="https://shop.example/"' in rendered.html
    assert "/e/o/" not in rendered.html


def test_blocks_escape_tenant_text():
    html = blocks_to_html([{"type": "text", "text": "<b>bold</b> & more"}])
    assert html == "<p>&lt;b&gt;bold&lt;/b&gt; &amp; more</p>"


def test_parse_merge_field_rejects_unknown_filters():
    with pytest.raises(DomainError, match="Unknown filter"):
        parse_merge_field("first_name | evil")
