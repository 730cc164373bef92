"""The operator dashboard: one static page whose script draws charts from the admin API's JSON."""

from gateway.dashboard.router import build_dashboard_router

__all__ = ["build_dashboard_router"]
