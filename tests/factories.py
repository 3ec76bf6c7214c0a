"""factory_boy factories, one per model that tests build."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from nodes.models import Node, NodeSnapshot
from orgs.models import Membership, Organization, Role
from scans.models import Finding, ScanJob, ScanProfile, ScanSession


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    scope_networks = factory.LazyFunction(lambda: ["127.0.0.0/8"])


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    org = factory.SubFactory(OrganizationFactory)
    role = Role.VIEWER


class NodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Node

    org = factory.SubFactory(OrganizationFactory)
    address = factory.Sequence(lambda n: f"127.0.{50 + n // 250}.{1 + n % 250}")
    resolved_ip = factory.LazyAttribute(lambda node: node.address)
    snapshot = factory.RelatedFactory("tests.factories.NodeSnapshotFactory", factory_related_name="node",
                                      org=factory.SelfAttribute("..org"))


class NodeSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NodeSnapshot


class ScanSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScanSession

    org = factory.SubFactory(OrganizationFactory)
    profile = factory.LazyFunction(lambda: ScanProfile.objects.get(org=None, slug="standard"))
    trigger = ScanSession.Trigger.CONSOLE
    correlation_id = factory.Sequence(lambda n: f"corr-{n}")


class ScanJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScanJob

    session = factory.SubFactory(ScanSessionFactory)
    node = factory.SubFactory(NodeFactory, org=factory.SelfAttribute("..session.org"))
    scanner = "tls"


class FindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Finding

    node = factory.SubFactory(NodeFactory)
    org = factory.SelfAttribute("node.org")
    source = "tls"
    rule_id = factory.Sequence(lambda n: f"rule-{n}")
    title = factory.LazyAttribute(lambda f: f"Finding {f.rule_id}")
    severity = "medium"
    fingerprint = factory.Sequence(lambda n: f"{n:064x}")
