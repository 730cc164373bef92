"""``patchbay analytics export|summary``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from gateway.analytics.export import FORMATS, ExportFormat, count_events, export
from gateway.analytics.store import open_engine
from gateway.analytics.summary import summary
from gateway.analytics.timeparse import parse_time
from gateway.shared.settings import Settings

__all__ = ["analytics_group"]


def _when(_: click.Context, __: click.Parameter, value: str | None) -> float | None:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_since = click.option("--since", callback=_when, help="ISO date/time, epoch s, or an age: 24h, 7d (default: all)")
_until = click.option("--until", callback=_when, help="same forms as --since (default: now)")


@click.group("analytics")
def analytics_group() -> None:
    """Export analytics events and summarise them (ids are pseudonymised)."""


@analytics_group.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@_since
@_until
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def export_command(fmt: ExportFormat, since: float | None, until: float | None, out: Path) -> None:
    async def main() -> int:
        engine = await open_engine(Settings().sqlalchemy_url)
        try:
            total = await count_events(engine, since, until)
            with tqdm(total=total, unit="event", desc=f"export {fmt}", disable=None) as bar:
                return await export(engine, fmt, since, until, out, progress=bar.update)
        finally:
            await engine.dispose()

    written = asyncio.run(main())
    click.echo(f"wrote {written:,} events to {out}")


@analytics_group.command("summary")
@_since
@_until
@click.option("--json", "as_json", is_flag=True, help="print the full summary as JSON")
def summary_command(since: float | None, until: float | None, as_json: bool) -> None:
    async def main() -> dict[str, Any]:
        engine = await open_engine(Settings().sqlalchemy_url)
        try:
            return await summary(engine, since, until)
        finally:
            await engine.dispose()

    report = asyncio.run(main())
    click.echo(json.dumps(report, indent=2) if as_json else render(report))


def _fmt(value: Any, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


def render(report: dict[str, Any]) -> str:
    """The summary for a terminal: the headline figures; ``--json`` has everything."""
    messages, engagement = report["messages"], report["engagement"]
    response, satisfaction, cost = report["response_time_ms"], report["satisfaction"], report["cost"]
    lines = [
        f"messages       {messages['total']:,}  "
        + "  ".join(f"{name}={count}" for name, count in messages["by_platform"].items()),
        "decisions      " + "  ".join(f"{name}={count}" for name, count in messages["by_decision"].items()),
        f"users          {engagement['active_users']} active, {engagement['messages_per_user']} messages each",
        f"response ms    p50 {_fmt(response['p50'])}  p95 {_fmt(response['p95'])}  p99 {_fmt(response['p99'])}",
        f"satisfaction   {_fmt(satisfaction['rate'])} of {satisfaction['reactions']} reactions",
        f"cost           ${cost['usd']:.4f} ({cost['prompt_tokens']:,} + {cost['completion_tokens']:,} tokens)",
    ]
    for stage, figures in report["latency_breakdown_ms"].items():
        lines.append(f"  {stage:<14} p50 {_fmt(figures['p50'])}  p95 {_fmt(figures['p95'])} ms")
    for name, figures in report["patches"].items():
        lines.append(f"patch {name:<20} fallback rate {_fmt(figures['fallback_rate'])} of {figures['calls']} calls")
    tools = report.get("tools") or {}
    for name, figures in (tools.get("by_tool") or {}).items():
        latency = figures["latency_ms"]
        lines.append(
            f"tool {name:<21} {figures['calls']} calls  {figures['failures']} failed  "
            f"p50 {_fmt(latency['p50'])}  p95 {_fmt(latency['p95'])} ms"
        )
    for server, count in (tools.get("unavailable") or {}).items():
        lines.append(f"tool server {server:<14} unavailable for {count} replies")
    for name, figures in report["providers"].items():
        lines.append(f"provider {name:<17} {figures['replies']} replies  ${figures['cost_usd']:.4f}")
    for name, comparison in report["rollouts"].items():
        test = comparison["satisfaction"]
        lines.append(
            f"rollout {name:<18} satisfaction {_fmt(comparison['rollout']['satisfaction'])} vs "
            f"{_fmt(comparison['control']['satisfaction'])} (diff {_fmt(test['difference'])}, "
            f"95% CI [{_fmt(test['ci95_low'])}, {_fmt(test['ci95_high'])}], p={_fmt(test['p_value'])})"
        )
    return "\n".join(lines)
