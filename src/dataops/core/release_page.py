"""The Releases page of a deployment, as data and as HTML (pure: the Airflow plugin fetches the
record and the history and hands them here)."""

from __future__ import annotations

from html import escape
from typing import Any

from dataops.core.promotion import CANDIDATE, short
from dataops.core.release_record import ReleaseRecord

_COMPARED = (
    ("git_commit", "git commit"),
    ("dbt_manifest_sha256", "dbt manifest sha256"),
    ("migration_version", "migration version"),
)


def page_data(
    env: str, active: str | None, record: ReleaseRecord | None, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the page shows, also served as JSON: the active release and the history."""
    return {
        "environment": env,
        "active_release": active,
        "record": record.document() if record else None,
        "images": [
            {"name": name, "digest": image.digest, "tag": image.tag}
            for name, image in sorted((record.images if record else {}).items())
        ],
        "facts": _facts(record),
        "checks": [h for h in history if h.get("action") == "check"],
        "upstream": upstream_diff(active, record, history),
        "history": history,
    }


def _facts(record: ReleaseRecord | None) -> list[tuple[str, object]]:
    if record is None:
        return []
    return [
        ("git commit", record.git_commit),
        ("dbt manifest sha256", record.dbt_manifest_sha256),
        ("migration version", record.migration_version),
        (
            "changed files at release",
            "not recorded (an older release)"
            if record.git_dirty is None
            else ", ".join(record.git_dirty) or "none",
        ),
    ]


def upstream_diff(
    active: str | None, record: ReleaseRecord | None, history: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """What the environment this one is promoted from runs and this one does not yet: from
    the newest `candidate` row of the history (newest first). None when there is none."""
    candidate = next((h for h in history if h.get("action") == CANDIDATE), None)
    if candidate is None:
        return None
    theirs = candidate.get("detail") or {}
    ours = record.document() if record else {}
    here = record.image_digests() if record else {}
    there = theirs.get("images") or {}
    images = [
        {"name": n, "upstream": there.get(n), "here": here.get(n)}
        for n in sorted(set(here) | set(there))
        if here.get(n) != there.get(n)
    ]
    changes = [
        {"what": label, "upstream": theirs.get(key), "here": ours.get(key)}
        for key, label in _COMPARED
        if theirs.get(key) != ours.get(key)
    ]
    new = sorted(
        set(theirs.get("migration_checksums") or {}) - set(ours.get("migration_checksums") or {})
    )
    return {
        "from": theirs.get("from"),
        "release_id": candidate["release_id"],
        "since": candidate.get("at"),
        "pending": candidate["release_id"] != active,
        "images": images,
        "changes": changes,
        "new_migrations": new,
        "checks": theirs.get("checks") or [],
    }


def render(data: dict[str, Any], registry: str) -> str:
    env = escape(str(data["environment"]))
    active = data["active_release"]
    rows = "".join(
        f"<tr><td>{escape(i['name'])}</td><td><code>{escape(registry)}/dataops/"
        f"{escape(i['name'])}@{escape(str(i['digest']))}</code></td>"
        f"<td><code>{escape(str(i['tag']))}</code></td></tr>"
        for i in data["images"]
    )
    facts = data["facts"] or [
        (label, None) for label in ("git commit", "dbt manifest sha256", "migration version")
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
    upstream = _upstream(data.get("upstream"), env)
    headline = (
        f'<p>Active release <code id="active-release">{escape(active)}</code></p>'
        if active
        else "<p>No release is active in this environment yet.</p>"
    )
    return _page(
        f"Releases: {env}",
        f"""<h1>Releases of {env}</h1>
{headline}
<h2>Images (by digest)</h2>
<table id="images"><tr><th>image</th><th>pinned reference</th><th>content tag</th></tr>{rows}
</table>
<h2>Release</h2><table>{fact_rows}</table>
{upstream}
<h2>History (append-only, newest first)</h2>
<table id="history"><tr><th>at</th><th>action</th><th>release</th><th>by</th><th>result</th>
<th>detail</th></tr>{history}</table>
<p>JSON: the same address with <code>Accept: application/json</code>.</p>""",
    )


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2733; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; }}
td, th {{ border-bottom: 1px solid #dde3ea; padding: .3rem .6rem; text-align: left;
          vertical-align: top; font-size: .9rem; }}
code {{ font-size: .85rem; }} .refused, .fail, .error {{ color: #a32020; }}
</style></head><body>
{body}
</body></html>
"""


def render_dbt_results(data: dict[str, Any]) -> str:
    """One dbt step's results: every model, seed, snapshot and test with its status."""
    nodes = data.get("results") or []
    rows = "".join(
        f'<tr class="{escape(str(n.get("status")))}"><td><code>{escape(str(n.get("unique_id")))}'
        f"</code></td><td>{escape(str(n.get('status')))}</td>"
        f"<td>{escape(str(n.get('seconds', '')))}</td>"
        f"<td>{escape(str(n.get('message') or ''))}</td></tr>"
        for n in nodes
    )
    counts: dict[str, int] = {}
    for n in nodes:
        counts[str(n.get("status"))] = counts.get(str(n.get("status")), 0) + 1
    tally = ", ".join(f"{v} {escape(k)}" for k, v in sorted(counts.items())) or "nothing ran"
    published = ", ".join(escape(str(p)) for p in data.get("published") or []) or "nothing"
    task = " / ".join(escape(str(data.get(k))) for k in ("dag_id", "run_id", "task_id"))
    return _page(
        f"dbt results: {task}",
        f"""<h1>dbt results</h1>
<p><code>{task}</code></p>
<p id="tally">{escape(str(data.get("models", 0)))} model(s),
{escape(str(data.get("tests", 0)))} test(s): {tally}</p>
<p>Published: {published}</p>
<table id="results"><tr><th>node</th><th>status</th><th>seconds</th><th>message</th></tr>
{rows}</table>
<p>JSON: the same address with <code>Accept: application/json</code>.</p>""",
    )


def _upstream(diff: dict[str, Any] | None, env: str) -> str:
    if diff is None:
        return ""
    source = escape(str(diff["from"]))
    head = f'<h2>What {source} has that {env} does not yet</h2><div id="upstream">'
    release = escape(str(diff["release_id"]))
    if not diff["pending"]:
        return head + f"<p>{env} runs what {source} runs: <code>{release}</code>.</p></div>"
    rows = "".join(
        f"<tr><td>{escape(i['name'])}</td><td><code>{escape(str(i['upstream']))}</code></td>"
        f"<td><code>{escape(str(i['here']))}</code></td></tr>"
        for i in diff["images"]
    ) + "".join(
        f"<tr><td>{escape(c['what'])}</td><td><code>{escape(str(c['upstream']))}</code></td>"
        f"<td><code>{escape(str(c['here']))}</code></td></tr>"
        for c in diff["changes"]
    )
    checks = "".join(
        f'<li class="{"ok" if c.get("ok") else "refused"}">{escape(str(c.get("check")))}: '
        f"{'passed' if c.get('ok') else 'failed'} ({escape(str(c.get('actor')))}, "
        f"{escape(str(c.get('at')))}){': ' + escape(str(c['detail'])) if c.get('detail') else ''}"
        "</li>"
        for c in diff["checks"]
    )
    migrations = ", ".join(escape(m) for m in diff["new_migrations"]) or "none"
    return (
        head + f"<p>{source} runs <code>{release}</code> (since {escape(str(diff['since']))}), "
        f"not yet promoted to {env}.</p>"
        + f"<table><tr><th></th><th>{source}</th><th>{env}</th></tr>{rows}</table>"
        + f"<p>Migrations it would apply: {migrations}</p>"
        + f"<p>Checks in {source}:</p><ul>{checks or '<li>none yet</li>'}</ul></div>"
    )


def _detail(detail: object) -> str:
    if not isinstance(detail, dict):
        return str(detail or "")
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))[:300]
