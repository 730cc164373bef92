"""Analytics: events emitted off the reply path, stored in SQL, exported and summarised.

Producers call ``EventSink(redis_url).emit(event)``; the gateway runs one ``AnalyticsWriter``;
the CLI, the admin API and the dashboard read through ``export``, ``summary`` and ``timeseries``.
"""

from gateway.analytics.export import FORMATS, ExportFormat, count_events, export
from gateway.analytics.pseudonym import Pseudonymiser, load_or_create_key
from gateway.analytics.settings import AnalyticsSettings
from gateway.analytics.sink import EventSink, encode_event
from gateway.analytics.store import open_engine
from gateway.analytics.summary import summary, timeseries, two_proportion_z_test
from gateway.analytics.timeparse import parse_time
from gateway.analytics.writer import AnalyticsWriter

__all__ = [
    "FORMATS",
    "AnalyticsSettings",
    "AnalyticsWriter",
    "EventSink",
    "ExportFormat",
    "Pseudonymiser",
    "count_events",
    "encode_event",
    "export",
    "load_or_create_key",
    "open_engine",
    "parse_time",
    "summary",
    "timeseries",
    "two_proportion_z_test",
]
