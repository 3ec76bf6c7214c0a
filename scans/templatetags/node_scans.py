"""The node page's sections about scans: the node's open findings, and its sessions and jobs.

The page belongs to nodes, a layer below scans: it loads this library by name
(``{% load node_scans %}``) instead of importing scans, and each section costs one query.
"""

from __future__ import annotations

from django import template

from scans.selectors import finding_open_list_for_node, job_list_for_node

register = template.Library()


@register.inclusion_tag("scans/partials/node_findings.html", takes_context=True)
def node_findings(context, node):
    findings, more = finding_open_list_for_node(node=node)
    threshold = context["org"].potential_threshold
    for finding in findings:
        finding.potential = finding.potential_under(threshold)
    return {"org": context["org"], "node": node, "snapshot": context["snapshot"], "open_findings": findings,
            "more_findings": more}


@register.inclusion_tag("scans/partials/node_jobs.html", takes_context=True)
def node_jobs(context, node):
    return {"org": context["org"], "jobs": job_list_for_node(node=node)}
