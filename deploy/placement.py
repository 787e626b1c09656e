"""Node labels the stack's placement constraints name.

Stateful services (redis; mongo and prometheus in their overlays) and nginx (the
published address) are constrained to `node.labels.<label> == true`, so a reschedule
never starts them on a node without their volume or address. On a single-node swarm
the deploy sets every label on that node; with several nodes an operator chooses the
nodes (docs/SWARM.md, "Placement"), and the deploy only checks that each constraint
can be met.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from deploy import swarm

# The labels docker-compose.yml and its overlays constrain on, each to one node.
STACK_LABELS = {
    "prework.redis": "true",
    "prework.nginx": "true",
    "prework.mongo": "true",
    "prework.monitoring": "true",
}
CONSTRAINT = re.compile(r"^node\.labels\.([\w.-]+)\s*==\s*(\S+)$")


def label_single_node() -> str | None:
    """Put STACK_LABELS on the only node; what was done (None: nothing to do)."""
    found = swarm.nodes()
    if len(found) != 1:
        return None
    node = found[0]
    missing = {k: v for k, v in STACK_LABELS.items() if node.labels.get(k) != v}
    if not missing:
        return None
    swarm.add_node_labels(node.id, missing)
    labels = ", ".join(f"{k}={v}" for k, v in sorted(missing.items()))
    return f"labelled the single node {node.name}: {labels}"


def label_constraints(specs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each `node.labels.X == V` constraint of the given service specs, as {X: V}."""
    found = {}
    for spec in specs:
        placement = spec.get("TaskTemplate", {}).get("Placement") or {}
        for constraint in placement.get("Constraints") or []:
            match = CONSTRAINT.match(constraint.strip())
            if match:
                found[match.group(1)] = match.group(2)
    return found


def placement_problems(
    constraints: Mapping[str, str], nodes: Iterable[swarm.Node]
) -> tuple[list[str], list[str]]:
    """(errors: a label no node carries, warnings: a label on several nodes)."""
    errors, warnings = [], []
    for label, value in sorted(constraints.items()):
        carriers = sorted(n.name for n in nodes if n.labels.get(label) == value)
        if not carriers:
            errors.append(
                f"no node carries {label}={value}: "
                f"docker node update --label-add {label}={value} NODE"
            )
        elif len(carriers) > 1:
            warnings.append(
                f"{len(carriers)} nodes carry {label}={value} ({', '.join(carriers)}): "
                "a reschedule may move its service away from its volume"
            )
    return errors, warnings
