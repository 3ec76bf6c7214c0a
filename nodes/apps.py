from django.apps import AppConfig

from orgs.events import ZONES_CHANGED, event_subscribe


class NodesConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'nodes'

    def ready(self):
        # Zones (orgs, below) say where a node is scanned: when they change, the nodes are placed again.
        from nodes.placement import zones_changed

        event_subscribe(ZONES_CHANGED, zones_changed)
