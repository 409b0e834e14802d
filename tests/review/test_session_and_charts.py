"""Pure parts of the dashboard: session signing, CSRF tokens, redirect safety, SVG charts."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from api.dashboard import charts
from api.dashboard.login_page import safe_next
from api.dashboard.render import ago, templates
from api.dashboard.session import DashboardSession, Signer, new_session


def test_session_round_trip_and_tampering():
    signer = Signer("s3cret")
    session = new_session("abc123", ttl_s=60)
    value = signer.dump(session)
    loaded = signer.load(value)
    assert (loaded.sid, loaded.key_id, loaded.expires) == (session.sid, "abc123", session.expires)
    assert signer.load(value.replace("abc123", "ffffff")) is None  # another key id
    assert Signer("other").load(value) is None  # another secret
    assert signer.load(value, now=time.time() + 120) is None  # expired
    assert signer.load(None) is None and signer.load("v1.a.b") is None and signer.load("x" * 500) is None
    anonymous = signer.load(signer.dump(new_session()))
    assert anonymous.key_id == ""


def test_csrf_token_is_bound_to_the_session():
    signer = Signer("s3cret")
    one, two = DashboardSession("sid-1", "", 0), DashboardSession("sid-2", "", 0)
    token = signer.csrf_token(one)
    assert signer.csrf_ok(one, token)
    assert not signer.csrf_ok(two, token) and not signer.csrf_ok(one, None) and not signer.csrf_ok(one, "")
    assert not Signer("").csrf_ok(one, token)  # an empty secret means a random one, never ""


def test_login_only_redirects_into_the_dashboard():
    assert safe_next("/dashboard/cases/3?status=open") == "/dashboard/cases/3?status=open"
    for bad in ("https://evil.example/", "//evil.example/dashboard", "/dashboard\\@evil", None, 5, "/v1/jobs"):
        assert safe_next(bad) == "/dashboard/queue"


def test_templates_escape_everything():
    html = templates.env.from_string("<p>{{ text }}</p>").render(text="<script>alert(1)</script>")
    assert html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_ago():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert ago(now - timedelta(seconds=5), now) == "just now"
    assert ago(now - timedelta(minutes=3), now) == "3 min ago"
    assert ago(now - timedelta(hours=5), now) == "5 h ago" and ago(now - timedelta(days=2), now) == "2 d ago"


def test_nice_ticks():
    assert charts.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0.8) == [0, 0.2, 0.4, 0.6, 0.8]
    assert charts.nice_ticks(0) == [0, 0.25, 0.5, 0.75, 1.0]
    assert charts.nice_ticks(2, integer=True) == [0, 1, 2]


def test_charts_escape_labels_and_show_empty_states():
    hostile = "<script>alert(1)</script>"
    svg = str(charts.bar_list([(hostile, 3), ("ok", 1)], label=hostile))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "No data" in str(charts.histogram([], label="x"))
    assert "queue is empty" in str(charts.bar_list([("a", 0)], label="x"))
    bars = str(charts.histogram([(0.0, 0.5, 2), (0.5, 1.0, 0)], label="h", markers=[(0.5, "flag")]))
    assert bars.count("<rect") == 1 and 'class="marker"' in bars


HOURS = [datetime(2026, 1, 1, h, tzinfo=timezone.utc) for h in range(24)]


def paths(svg: str) -> list[str]:
    return re.findall(r'<path class="line"[^>]* d="([^"]+)"', svg)


def test_a_none_in_the_middle_breaks_the_line():
    values = [0.2, 0.4, None, 0.6, 0.8] + [None] * 19
    svg = str(charts.time_chart(HOURS, [charts.Series("rate", values, "red")], label="rate"))
    assert [d.count("M") for d in paths(svg)] == [1, 1], "two runs, two separate segments"
    assert [d.count("L") for d in paths(svg)] == [1, 1]
    assert svg.count("<circle") == 4 and "00:00: 0.2" in svg and "04:00: 0.8" in svg
    leading = str(charts.time_chart(HOURS[:3], [charts.Series("rate", [None, 0.5, 1.0], "red")], label="rate"))
    assert leading.count("<circle") == 2 and len(paths(leading)) == 1  # a leading None is a gap, not a zero


def test_a_lone_point_gets_a_visible_marker():
    only_last = str(charts.time_chart(HOURS, [charts.Series("p95", [None] * 23 + [0.3], "red")], label="latency"))
    assert paths(only_last) == []
    [marker] = re.findall(r'<circle class="dot lone"[^>]* r="([\d.]+)"', only_last)
    assert float(marker) >= 5
    # Isolated between gaps too, and even where the series is dense enough to hide ordinary dots.
    dense = [0.5] * 20 + [None, 0.7, None, None]
    svg = str(charts.time_chart(HOURS, [charts.Series("p95", dense, "red")], label="latency"))
    assert len(re.findall(r'class="dot lone"', svg)) == 1 and "21:00: 0.7" in svg.split('class="dot lone"')[1]
    assert len(re.findall(r'class="hover"', svg)) == 19 and len(paths(svg)) == 1


def test_the_x_axis_labels_the_latest_bucket():
    svg = str(charts.time_chart(HOURS, [charts.Series("jobs", [0] * 23 + [4], "blue", "bar")], label="jobs"))
    ticks = re.findall(r'<text class="tick" x="[^"]+" y="212" text-anchor="middle">([^<]+)</text>', svg)
    assert ticks[0] == "23:00" and "03:00" in ticks and len(ticks) == 6
    few = str(charts.time_chart(HOURS[:5], [charts.Series("jobs", [1, 0, 0, 0, 2], "blue", "bar")], label="jobs"))
    assert re.findall(r'text-anchor="middle">(\d\d:00)</text>', few) == ["04:00", "03:00", "02:00", "01:00", "00:00"]
