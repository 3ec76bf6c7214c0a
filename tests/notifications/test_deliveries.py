"""Channels of every kind, delivered through the webhook engine to real loopback receivers (Slack, Teams)
and Django's locmem e-mail backend; each channel's rules choose which events it is told."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from interventions.models import Intervention
from nodes.models import Node
from orgs.events import RISK_ACCEPTANCE_EXPIRED, SLA_BREACHED, event_publish
from reports.models import WebhookDelivery, WebhookEndpoint
from reports.webhooks import services as webhooks
from scans.findings.sla_sweep import sla_sweep
from scans.models import Finding, FindingEvent, ScanSession
from scans.pipeline.sessions import session_finish
from tests.factories import FindingFactory, NodeFactory, ScanSessionFactory

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status
Kind = WebhookEndpoint.Kind


def channel(world, kind, events, url="", **kwargs):
    return webhooks.webhook_endpoint_create(org=world.org, kind=kind, url=url, events=events, by=world.owner,
                                            **kwargs)[0]


def a_session(world, *, failed=False, new=(), priorities=None, reopened=0):
    """A session that finished (or failed), having found ``new`` severities and reopened ``reopened`` findings."""
    session = ScanSessionFactory(org=world.org)
    node = Node.objects.filter(org=world.org, address="127.0.60.7").first() or NodeFactory(org=world.org,
                                                                                        address="127.0.60.7")
    for i, severity in enumerate(new):
        FindingFactory(node=node, severity=severity, first_session=session, last_session=session, port=443,
                       title=f"{severity} thing {i}", priority=(priorities or {}).get(i))
    for i in range(reopened):
        finding = FindingFactory(node=node, severity="high", first_session=ScanSessionFactory(org=world.org),
                                 title=f"back again {i}")
        FindingEvent.objects.create(finding=finding, session=session, kind=FindingEvent.Kind.REOPENED,
                                    from_status="fixed", to_status="open")
    counters = {"findings_new": len(new), "findings_reopened": reopened}
    if not failed:
        counters.update(nodes_total=1, jobs_total=1, jobs_succeeded=1)
    ScanSession.objects.filter(pk=session.pk).update(**counters)
    return session_finish(session_id=session.pk)


def deliver_all(**filters):
    results = []
    for delivery in WebhookDelivery.objects.filter(**filters).order_by("pk"):
        results.append(webhooks.webhook_deliver(delivery_id=delivery.pk))
    return results


def test_a_slack_channel_gets_a_block_kit_message_unsigned(world, chat, settings_fast):
    slack = channel(world, Kind.SLACK, ["finding.critical"], url=chat.url())
    assert slack.secret == ""
    a_session(world, new=["critical", "high", "low"])

    [result] = deliver_all(endpoint=slack)

    assert result.status == Status.SUCCEEDED
    [(headers, body)] = chat.received
    assert "Watchpost-Signature" not in headers and headers["Content-Type"] == "application/json"
    assert body["text"] == "Watchpost: 1 new P1 or critical finding"
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds[0] == "header" and kinds[-1] == "actions"
    listed = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section" and "text" in b]
    assert any("[CRITICAL] critical thing 0 on 127.0.60.7:443" in text for text in listed)
    button = body["blocks"][-1]["elements"][0]
    assert button["url"].startswith("https://watchpost.lab.internal/o/acme/findings/")


def test_a_teams_channel_gets_one_adaptive_card_as_teams_workflows_expect(world, chat, settings_fast):
    teams = channel(world, Kind.TEAMS, ["session.failed"], url=chat.url("/workflows/abc/triggers/manual/paths/invoke"))
    session = a_session(world, failed=True)

    [result] = deliver_all(endpoint=teams)

    assert result.status == Status.SUCCEEDED
    [body] = chat.bodies
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0] == {"type": "TextBlock", "text": f"Session #{session.pk} failed", "weight": "Bolder",
                               "size": "Medium", "wrap": True}
    assert any(block.get("text") == "no enabled node to scan" for block in card["body"])
    facts = next(block for block in card["body"] if block["type"] == "FactSet")["facts"]
    assert {"title": "Organization", "value": "Acme"} in facts
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the session",
                                "url": f"https://watchpost.lab.internal/o/acme/sessions/{session.pk}/"}]


def test_each_channel_is_told_only_the_events_its_rules_choose(world, chat, settings_fast):
    critical = channel(world, Kind.SLACK, ["finding.critical"], url=chat.url("/critical"))
    failures = channel(world, Kind.SLACK, ["session.failed"], url=chat.url("/failures"))
    reopened = channel(world, Kind.SLACK, ["finding.reopened"], url=chat.url("/reopened"))

    a_session(world, new=["high", "medium"])  # nothing critical, nothing failed, nothing reopened
    assert not WebhookDelivery.objects.filter(endpoint__in=[failures, reopened]).exists()
    # The critical channel's list is read at the first attempt: nothing critical, nothing sent.
    assert deliver_all(endpoint=critical) == [None] and not chat.received

    a_session(world, new=["medium"], priorities={0: 1})  # a P1 of medium severity is urgent
    a_session(world, failed=True)
    a_session(world, reopened=2)

    assert [d.event_type for d in WebhookDelivery.objects.filter(endpoint=critical)] == ["finding.critical"]
    assert [d.event_type for d in WebhookDelivery.objects.filter(endpoint=failures)] == ["session.failed"]
    assert [d.event_type for d in WebhookDelivery.objects.filter(endpoint=reopened)] == ["finding.reopened"]
    deliver_all(endpoint=critical)
    deliver_all(endpoint=reopened)
    texts = [body["text"] for body in chat.bodies]
    assert texts == ["Watchpost: 1 new P1 or critical finding", "Watchpost: 2 findings reopened"]
    p1_line = chat.bodies[0]["blocks"][2]["text"]["text"]
    assert "[MEDIUM P1] medium thing 0" in p1_line


def test_a_signed_webhook_subscribed_to_the_new_events_is_still_signed(world, settings_fast):
    from tests.webhooks.receiver import Receiver

    receiver = Receiver(host="127.0.95.77").start()
    try:
        endpoint, secret = webhooks.webhook_endpoint_create(org=world.org, url=receiver.url(),
                                                            events=["session.failed"], by=world.owner)
        receiver.secret = secret
        a_session(world, failed=True)
        [result] = deliver_all(endpoint=endpoint)
        assert result.status == Status.SUCCEEDED and receiver.verdicts == ["ok"]
        assert receiver.received[0].headers["Watchpost-Event"] == "session.failed"
    finally:
        receiver.stop()


def test_a_slack_channel_answering_500_is_retried_then_paused_by_the_circuit_breaker(world, chat, settings_fast):
    slack = channel(world, Kind.SLACK, ["session.failed"], url=chat.url())
    chat.answers.extend([500] * 6)
    a_session(world, failed=True)
    a_session(world, failed=True)

    for delivery in WebhookDelivery.objects.filter(endpoint=slack).order_by("pk"):
        for _ in range(3):  # WATCHPOST_WEBHOOK_MAX_ATTEMPTS
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)
            webhooks.webhook_deliver(delivery_id=delivery.pk)

    assert list(WebhookDelivery.objects.filter(endpoint=slack).values_list("status", flat=True)) == [Status.FAILED] * 2
    assert len(chat.received) == 6
    slack.refresh_from_db()
    assert slack.is_paused and "2 deliveries in a row failed" in slack.paused_reason
    intervention = Intervention.objects.get(kind=Intervention.Kind.WEBHOOK_FAILING)
    assert intervention.title.startswith("Slack incoming webhook")
    # Paused: the next event is held, not sent, until a person resumes the channel.
    a_session(world, failed=True)
    assert WebhookDelivery.objects.filter(endpoint=slack, status=Status.HELD).count() == 1
    assert webhooks.webhook_endpoint_resume(endpoint=slack, by=world.owner) == 1


def test_an_email_channel_mails_its_addresses_and_members_through_django(world, settings_fast):
    email = channel(world, Kind.EMAIL, ["session.failed", "intervention.opened"],
                    email_addresses=["soc@example.test"], email_members=[world.analyst])
    session = a_session(world, failed=True)

    [result] = deliver_all(endpoint=email)

    assert result.status == Status.SUCCEEDED
    [message] = mail.outbox
    assert sorted(message.to) == ["acme-analyst@example.test", "soc@example.test"]
    assert message.subject == f"[Watchpost] Acme: Session #{session.pk} failed"
    assert "no enabled node to scan" in message.body
    assert f"https://watchpost.lab.internal/o/acme/sessions/{session.pk}/" in message.body
    delivery = WebhookDelivery.objects.get(endpoint=email)
    assert delivery.status == Status.SUCCEEDED and delivery.attempts == 1 and delivery.delivered_at


def test_a_member_who_left_is_no_longer_mailed(world, settings_fast):
    email = channel(world, Kind.EMAIL, ["session.failed"], email_addresses=["soc@example.test"],
                    email_members=[world.analyst])
    world.analyst.memberships.filter(org=world.org).delete()
    a_session(world, failed=True)
    deliver_all(endpoint=email)
    assert mail.outbox[0].to == ["soc@example.test"]


def test_an_unreachable_mail_server_is_retried_like_an_http_receiver(world, settings_fast):
    with socket.socket() as sock:  # a port nobody listens on: the connection is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings_fast.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings_fast.EMAIL_HOST, settings_fast.EMAIL_PORT, settings_fast.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    email = channel(world, Kind.EMAIL, ["session.failed"], email_addresses=["soc@example.test"])
    a_session(world, failed=True)

    [result] = deliver_all(endpoint=email)

    assert result.status == Status.RETRYING and result.retry_in > 0
    delivery = WebhookDelivery.objects.get(endpoint=email)
    assert delivery.status == Status.RETRYING and "ConnectionRefusedError" in delivery.last_error


def test_the_sla_breach_entry_point_tells_the_subscribed_channels_and_the_assignees(world, chat, settings_fast):
    channel(world, Kind.SLACK, ["finding.sla_breached"], url=chat.url())
    channel(world, Kind.EMAIL, ["finding.sla_breached"], email_assignees=True)
    channel(world, Kind.SLACK, ["finding.critical"], url=chat.url("/other"))  # not subscribed: told nothing
    node = NodeFactory(org=world.org, address="127.0.60.9")
    late = FindingFactory(node=node, severity="high", title="Old OpenSSH", assignee=world.analyst,
                          due_at=timezone.now() - timedelta(days=2))

    event_publish(SLA_BREACHED, org=world.org, finding_ids=[late.pk])

    assert WebhookDelivery.objects.count() == 2
    deliver_all()
    [body] = chat.bodies
    assert body["text"] == "Watchpost: 1 finding past the SLA due date"
    assert "assigned to acme-analyst" in body["blocks"][2]["text"]["text"]
    [message] = mail.outbox
    assert message.to == ["acme-analyst@example.test"] and "Old OpenSSH" in message.body


def test_the_risk_acceptance_expiry_entry_point_tells_the_subscribed_channels(world, chat, settings_fast):
    teams = channel(world, Kind.TEAMS, ["finding.risk_expired"], url=chat.url())
    finding = FindingFactory(node=NodeFactory(org=world.org), severity="medium", title="Weak cipher")
    other_orgs = FindingFactory(node=NodeFactory(org=world.other_org), title="Not yours")

    event_publish(RISK_ACCEPTANCE_EXPIRED, org=world.org, finding_ids=[finding.pk, other_orgs.pk])

    [delivery] = WebhookDelivery.objects.filter(endpoint=teams)
    assert [f["title"] for f in delivery.payload["data"]["findings"]] == ["Weak cipher"]
    deliver_all()
    card = chat.bodies[0]["attachments"][0]["content"]
    assert card["body"][0]["text"] == "Accepted risk expired on 1 finding"


def test_an_event_with_no_channel_subscribed_writes_nothing(world, django_assert_num_queries):
    finding = FindingFactory(node=NodeFactory(org=world.org))
    with django_assert_num_queries(1):
        event_publish(SLA_BREACHED, org=world.org, finding_ids=[finding.pk])
    assert not WebhookDelivery.objects.exists()


def test_the_sla_sweep_reopens_an_expired_risk_acceptance_and_mails_its_owner(world, settings_fast):
    channel(world, Kind.EMAIL, ["finding.risk_expired"], email_assignees=True)
    accepted = FindingFactory(node=NodeFactory(org=world.org), severity="high", title="Old OpenSSH",
                              assignee=world.analyst, status=Finding.Status.RISK_ACCEPTED,
                              risk_accepted_until=timezone.now() - timedelta(minutes=5))

    sla_sweep()
    deliver_all()

    accepted.refresh_from_db()
    assert accepted.status == Finding.Status.OPEN
    assert FindingEvent.objects.filter(finding=accepted, to_status="open").exists()
    [message] = mail.outbox
    assert message.to == ["acme-analyst@example.test"] and "Old OpenSSH" in message.body
