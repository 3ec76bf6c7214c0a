"""Template filters for intervention pages: readable context and subject, and whether Retry applies."""

from django import template

from interventions import display
from interventions.services import intervention_retryable

register = template.Library()


@register.filter
def context_facts(context):
    return display.context_facts(context)


@register.filter
def context_summary(context):
    return display.context_summary(context)


@register.filter
def subject_label(intervention):
    return display.subject_label(intervention)


@register.filter
def retryable(intervention) -> bool:
    # Asked of the retry handler table (interventions.services), so a page never offers a retry that cannot run.
    return intervention_retryable(intervention)
