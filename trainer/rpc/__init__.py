"""The tRPC API: wire protocol (wire.py) and one router module per area."""

from __future__ import annotations

from trainer.rpc.router import Procedure, Router, merge


def app_routers() -> list[Router]:
    """Every router of the API, in the order codegen lists them."""
    from trainer.rpc import account, activities, auth, connections, dashboard, devices, plans, sync, user

    return [
        auth.router,
        user.router,
        sync.router,
        devices.router,
        plans.router,
        dashboard.router,
        account.router,
        activities.router,
        connections.router,
    ]


def all_procedures() -> dict[str, Procedure]:
    return merge(*app_routers())


__all__ = ["Procedure", "Router", "all_procedures", "app_routers"]
