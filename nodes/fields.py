"""A node's fields and its snapshot's (see ``config.fields``).

``NODE`` is the node of the API's list and detail: ``nodes.api`` describes and represents it
with these, and the list page has PostgreSQL write the same fields as JSON
(``nodes.selectors.nodes_page_json``). ``NODE_REPORT`` is the node a report's appendix heads
its findings with (``reports.content``).
"""

from __future__ import annotations

from config.fields import Fields, computed, ip_address, nested, plain, time
from nodes.models import SEVERITIES, Node

SNAPSHOT = Fields(
    plain("score"), plain("grade"), *(plain(severity) for severity in SEVERITIES),
    computed("open_findings", "open_findings", python=None,
             sql=lambda column: "(" + " + ".join(column(severity) for severity in SEVERITIES) + ")"),
    plain("open_ports"), plain("protocols"), plain("last_scan_status"), time("last_scan_at"),
    plain("open_interventions"), time("updated_at"),
)

NODE = Fields(
    plain("id"), plain("address"), plain("name"), plain("hostname"), ip_address("resolved_ip"), plain("state"),
    plain("enabled"), plain("criticality"), plain("tags"), plain("protocols"),
    plain("max_new_connections_per_second"), plain("max_connections_at_once"), plain("zone", "zone_id"),
    plain("zone_pinned"),
    computed("open_ports", "services", python=Node.ports_of, sql=lambda column: Node.ports_sql(column("services"))),
    time("last_discovered_at"), time("last_scanned_at"), time("created_at"), time("updated_at"),
    nested("snapshot", "snapshot", SNAPSHOT, present="node_id"),
)

NODE_REPORT = Fields(plain("id"), plain("address"), plain("name"), plain("hostname"), plain("score", "snapshot__score"),
                     plain("grade", "snapshot__grade"))
