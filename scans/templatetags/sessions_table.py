"""The session page's job rows, built in Python.

The page and its fragment polled every 2 s while the session runs both render 25 of them:
through the template engine that would be some 300 variable lookups a render, here it is a loop.
"""

from __future__ import annotations

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from orgs.templatetags.console import reltime

register = template.Library()


@register.simple_tag
def job_rows(jobs, nodes_url: str):
    """``<tr>`` per job (``scans.selectors.session_jobs``, reading ``scans.fields.JOB_ROW``): node, scanner,
    status, attempts, finished, error."""
    url = escape(nodes_url)
    out = []
    for job in jobs:
        status = job.status
        error = escape(Truncator(job.error).chars(300)) if job.error else ""
        out.append(
            f'<tr><td><a href="{url}{job.node_id}/">{escape(job.node)}</a></td><td>{escape(job.scanner)}</td>\n'
            f'        <td><span class="status status-{escape(status)}">{escape(status[:1].upper() + status[1:])}</span></td>\n'
            f'        <td class="num">{job.attempts}/{job.max_attempts}</td><td>{reltime(job.finished_at)}</td>\n'
            f'        <td class="job-error">{error}</td></tr>')
    return mark_safe("\n".join(out))
