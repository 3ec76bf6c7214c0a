"""The console's tables: each sits in a region that scrolls sideways on a narrow screen.

    {% table id="zones" class="cards-narrow" data_keyboard_list=True %}<thead>…</thead><tbody>…</tbody>{% endtable %}

writes ``<div class="table-wrap" tabindex="0"><table id="zones" class="cards-narrow" data-keyboard-list>``,
the body, then ``</table></div>``. The region takes the keyboard focus, so a table wider than the
screen can be scrolled without a mouse (a scrollable region must be focusable). Attributes come
in the order given; underscores in a name become hyphens; ``True`` writes the attribute bare,
``False`` or ``None`` leaves it out.
"""

from __future__ import annotations

from django import template
from django.template.base import token_kwargs
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


class TableNode(template.Node):
    def __init__(self, attrs: dict, nodelist: template.NodeList) -> None:
        self.attrs = attrs
        self.nodelist = nodelist

    def render(self, context) -> str:
        attrs = ((name.replace("_", "-"), value.resolve(context)) for name, value in self.attrs.items())
        written = "".join(format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value)
                          for name, value in attrs if value is not False and value is not None)
        return format_html('<div class="table-wrap" tabindex="0">\n<table{}>{}</table>\n</div>',
                           mark_safe(written), mark_safe(self.nodelist.render(context)))


@register.tag("table")
def table(parser, token) -> TableNode:
    bits = token.split_contents()
    attrs = token_kwargs(bits[1:], parser)
    if len(attrs) != len(bits) - 1:
        raise template.TemplateSyntaxError(f"{bits[0]} takes name=value attributes only")
    nodelist = parser.parse(("endtable",))
    parser.delete_first_token()
    return TableNode(attrs, nodelist)
