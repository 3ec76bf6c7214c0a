"""Webhook endpoints and deliveries leave for reports (reports.0005), which sends them: only the
state forgets them, the tables stay."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("orgs", "0007_organization_score_to_scans"),
        ("reports", "0005_webhooks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="WebhookDelivery"),
                migrations.DeleteModel(name="WebhookEndpoint"),
            ],
            database_operations=[],
        ),
    ]
