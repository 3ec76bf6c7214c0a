"""Celery adapters for node work: load ids, call one service."""

from __future__ import annotations

import structlog
from celery import shared_task

from nodes.models import Node, NodeSnapshot

logger = structlog.get_logger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def node_rescore_task(node_id: int) -> None:
    """Re-score one node and rewrite its snapshot (after a change outside a session)."""
    from scans.scoring import scoring_run

    node = Node.objects.select_related("org").filter(pk=node_id).first()
    if node is None:
        logger.info("node_rescore.skipped", node_id=node_id, reason="node deleted")
        return
    scoring_run(org=node.org, node_ids=[node.pk])
    snapshot = NodeSnapshot.objects.get(node=node)
    logger.info("node_rescore.done", node_id=node_id, score=snapshot.score, open_findings=snapshot.open_findings)


@shared_task(name="nodes.tasks.discovery_jobs_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def discovery_jobs_run(job_ids: list[int]) -> None:
    """Discovery jobs of a session (the pipeline's first stage); time limits come with the message."""
    from scans.pipeline.execution import jobs_run

    jobs_run(job_ids=job_ids)
