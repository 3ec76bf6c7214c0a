"""Every console table sits in a scrolling region the keyboard can reach: the {% table %} tag."""

from __future__ import annotations

import pytest
from django.template import Context, Template, TemplateSyntaxError


def render(source: str, **context) -> str:
    return Template("{% load tables %}" + source).render(Context(context))


def test_it_wraps_the_table_in_a_focusable_scrolling_region():
    html = render("{% table %}<tbody></tbody>{% endtable %}")
    assert html == '<div class="table-wrap" tabindex="0">\n<table><tbody></tbody></table>\n</div>'


def test_it_writes_the_attributes_in_the_order_given_with_hyphens_and_bare_flags():
    html = render('{% table id="zones" class="cards-narrow" data_keyboard_list=True hidden=False %}{% endtable %}')
    assert '<table id="zones" class="cards-narrow" data-keyboard-list>' in html
    assert "hidden" not in html


def test_it_escapes_attribute_values_but_not_the_body():
    html = render("{% table title=title %}<tbody>{{ cell }}</tbody>{% endtable %}", title='"><script>', cell="<b>")
    assert 'title="&quot;&gt;&lt;script&gt;"' in html
    assert "<tbody>&lt;b&gt;</tbody>" in html


def test_it_refuses_an_attribute_without_a_value():
    with pytest.raises(TemplateSyntaxError):
        render("{% table data-keyboard-list %}{% endtable %}")
