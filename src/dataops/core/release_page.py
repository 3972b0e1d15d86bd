"""The Releases page of a deployment, as data and as HTML (pure: the Airflow plugin fetches the
record and the history and hands them here)."""

from __future__ import annotations

from html import escape
from typing import Any

from dataops.core.promotion import short


def page_data(
    env: str, active: str | None, record: dict[str, Any] | None, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the page shows, also served as JSON: the active release and the history."""
    return {
        "environment": env,
        "active_release": active,
        "record": record,
        "images": [
            {"name": name, "digest": info.get("digest"), "tag": info.get("tag")}
            for name, info in sorted(((record or {}).get("images") or {}).items())
        ],
        "checks": [h for h in history if h.get("action") == "check"],
        "history": history,
    }


def render(data: dict[str, Any], registry: str) -> str:
    env = escape(str(data["environment"]))
    active = data["active_release"]
    record = data["record"] or {}
    rows = "".join(
        f"<tr><td>{escape(i['name'])}</td><td><code>{escape(registry)}/dataops/"
        f"{escape(i['name'])}@{escape(str(i['digest']))}</code></td>"
        f"<td><code>{escape(str(i['tag']))}</code></td></tr>"
        for i in data["images"]
    )
    facts = [
        ("git commit", record.get("git_commit")),
        ("dbt manifest sha256", record.get("dbt_manifest_sha256")),
        ("migration version", record.get("migration_version")),
        ("changed files at release", ", ".join(record.get("git_dirty") or []) or "none"),
    ]
    fact_rows = "".join(
        f"<tr><th>{escape(k)}</th><td><code>{escape(str(v))}</code></td></tr>" for k, v in facts
    )
    history = "".join(
        f'<tr class="{"ok" if h.get("ok") else "refused"}"><td>{escape(str(h.get("at")))}</td>'
        f"<td>{escape(str(h.get('action')))}</td><td><code>{escape(short(str(h['release_id'])))}"
        f"</code></td><td>{escape(str(h.get('actor')))}</td>"
        f"<td>{'ok' if h.get('ok') else 'refused'}</td>"
        f"<td><code>{escape(_detail(h.get('detail')))}</code></td></tr>"
        for h in data["history"]
    )
    headline = (
        f'<p>Active release <code id="active-release">{escape(active)}</code></p>'
        if active
        else "<p>No release is active in this environment yet.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Releases: {env}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2733; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; }}
td, th {{ border-bottom: 1px solid #dde3ea; padding: .3rem .6rem; text-align: left;
          vertical-align: top; font-size: .9rem; }}
code {{ font-size: .85rem; }} tr.refused {{ color: #a32020; }}
</style></head><body>
<h1>Releases of {env}</h1>
{headline}
<h2>Images (by digest)</h2>
<table id="images"><tr><th>image</th><th>pinned reference</th><th>content tag</th></tr>{rows}
</table>
<h2>Release</h2><table>{fact_rows}</table>
<h2>History (append-only, newest first)</h2>
<table id="history"><tr><th>at</th><th>action</th><th>release</th><th>by</th><th>result</th>
<th>detail</th></tr>{history}</table>
<p>JSON: the same address with <code>Accept: application/json</code>.</p>
</body></html>
"""


def _detail(detail: object) -> str:
    if not isinstance(detail, dict):
        return str(detail or "")
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))[:300]
