"""Every console page carries a strict Content-Security-Policy and uses no inline script or style."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_console_pages_send_a_policy_without_unsafe_inline(world, login):
    response = login(world.owner).get(reverse("orgs:dashboard", args=["acme"]))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy


def test_the_login_page_sends_the_policy_too(client):
    assert "default-src 'self'" in client.get(reverse("login"))["Content-Security-Policy"]


def test_htmx_is_told_not_to_inject_its_indicator_style(world, login):
    content = login(world.owner).get(reverse("orgs:dashboard", args=["acme"])).content.decode()
    assert '"includeIndicatorStyles": false' in content


# Report documents are self-contained files (downloaded as attachments, rendered to PDF by WeasyPrint):
# their stylesheet travels inside them. Every other template is a console page or fragment.
CONSOLE_TEMPLATES = sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")
                           if not p.relative_to(TEMPLATES).as_posix().startswith("reports/document"))


@pytest.mark.parametrize("template", CONSOLE_TEMPLATES)
def test_no_template_has_inline_script_style_or_event_handlers(template):
    # Template tags are not HTML: {% reltime t style="date" %} is an argument, not a style attribute.
    text = re.sub(r"{%.*?%}", "", (TEMPLATES / template).read_text(), flags=re.S)
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", text), "inline <script>"
    assert not re.search(r"<style[\s>]", text), "inline <style>"
    assert not re.search(r"\sstyle=\"", text), "style attribute"
    assert not re.search(r"\son[a-z]+=\"", text), "inline event handler"
