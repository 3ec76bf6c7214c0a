from django.apps import AppConfig


class OrgsConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'orgs'

    def ready(self):
        from orgs import login_audit  # noqa: F401  (connects the log-in audit receivers)
