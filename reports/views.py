"""Console pages of the reports app: the list with its request form and schedule, status polling, downloads."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render

from orgs.access import client_ip, managing_membership_for, writable_membership_for
from orgs.console import org_view
from reports import services
from reports.access import report_for
from reports.forms import ReportRequestForm, ReportScheduleForm
from reports.models import Report
from reports.selectors import report_list_for_org, report_schedule_for_org

PAGE_SIZE = 25


@org_view("GET")
def report_list(request, membership):
    return render(request, "reports/list.html", _list_context(request, membership))


def _list_context(request, membership, *, form=None, schedule_form=None):
    org = membership.org
    page = Paginator(report_list_for_org(org=org), PAGE_SIZE).get_page(request.GET.get("page"))
    schedule = report_schedule_for_org(org=org) if membership.can_manage else None
    if schedule_form is None and membership.can_manage:
        # Nothing is scheduled until someone ticks the box: a form that said "no report is
        # scheduled" above a ticked box read as a contradiction.
        initial = {"enabled": False}
        if schedule is not None:
            initial = {"enabled": schedule.enabled, "crontab": schedule.crontab, "timezone": schedule.crontab_timezone,
                       "format": schedule.format, "recipients": list(schedule.recipients.all())}
        schedule_form = ReportScheduleForm(org=org, initial=initial)
    return {
        "org": org,
        "membership": membership,
        "page": page,
        "reports": page.object_list,
        "form": form or ReportRequestForm(membership=membership),
        "schedule": schedule,
        "schedule_form": schedule_form,
    }


@org_view("POST", access=writable_membership_for)
def report_request(request, membership):
    form = ReportRequestForm(request.POST, membership=membership)
    if not form.is_valid():
        return render(request, "reports/list.html", _list_context(request, membership, form=form), status=400)
    data = form.cleaned_data
    report = services.report_request(
        org=membership.org, kind=data["kind"], format=data["format"], node=data["node_obj"],
        session=data["session_obj"], by=request.user, ip=client_ip(request),
        correlation_id=getattr(request, "request_id", "") or "",
    )
    messages.success(request, f"{report.get_kind_display()} report #{report.pk} ({report.get_format_display()}) "
                              "requested: it appears below when it is ready.")
    return redirect("reports:list", slug=membership.org.slug)


@org_view("GET")
def report_status(request, membership, report_id):
    """One row of the list; polled by htmx while the report renders (the finished row stops the polling)."""
    report = report_for(membership, report_id)
    return render(request, "reports/partials/report_row.html", {"org": membership.org, "report": report})


@org_view("GET")
def report_download(request, membership, report_id):
    """The stored file, through the application only: members of the organization, any role."""
    report = report_for(membership, report_id)
    if report.status != Report.Status.READY or not report.file:
        raise Http404("This report has no file (yet)")
    try:
        handle = report.file.open("rb")
    except FileNotFoundError:
        raise Http404("The report's file is gone from storage") from None
    response = FileResponse(handle, as_attachment=True, filename=report.file_name,
                            content_type=report.content_type or "application/octet-stream")
    # Reports hold a tenant's vulnerabilities: never in a shared cache.
    response["Cache-Control"] = "private, no-store"
    return response


@org_view("POST", access=managing_membership_for)
def report_schedule(request, membership):
    form = ReportScheduleForm(request.POST, org=membership.org)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.report_schedule_save(
                org=membership.org, crontab=data["crontab"], format=data["format"], timezone_name=data["timezone"],
                enabled=data["enabled"], recipients=data["recipients"], by=request.user, ip=client_ip(request),
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Report schedule saved.")
            return redirect("reports:list", slug=membership.org.slug)
    return render(request, "reports/list.html", _list_context(request, membership, schedule_form=form), status=400)
