from django.apps import AppConfig


class ReportsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'reports'

    def ready(self):
        # Webhooks subscribe to the events lower layers publish, so none of them imports reports.
        from reports.webhooks.services import webhooks_connect

        webhooks_connect()
