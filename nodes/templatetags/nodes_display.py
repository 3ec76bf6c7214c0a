"""Template filters for node pages."""

from django import template

from nodes import display

register = template.Library()


@register.filter
def refusal_reason(text):
    return display.refusal_reason(text)
