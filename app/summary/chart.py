"""The session's vitals as a printable SVG: pure function of plain values."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 900, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 40, 60
Y_MAX = 220  # one scale for mmHg, beats/min and %: all of them fit in 0-220
SERIES = (  # field, label, colour
    ("systolic", "Systolic (mmHg)", "#c0392b"),
    ("diastolic", "Diastolic (mmHg)", "#e67e22"),
    ("heart_rate", "Heart rate (/min)", "#2c3e50"),
    ("spo2", "SpO2 (%)", "#2980b9"),
)
SEVERITY_COLOURS = {"low": "#f1c40f", "medium": "#e67e22", "high": "#c0392b"}


def render(infusion: Any, readings: list[Any], alerts: list[dict[str, Any]], title: str) -> str:
    times = [r.measured_at for r in readings] + [a["first_seen_at"] for a in alerts]
    times += [t for t in (infusion.started_at, infusion.infusion_ended_at) if t is not None]
    start = min(times) if times else infusion.created_at
    end = max(times) if times else start + timedelta(minutes=60)
    if end - start < timedelta(minutes=10):
        end = start + timedelta(minutes=10)
    span = (end - start).total_seconds()
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: datetime) -> float:
        return float(LEFT + plot_w * (t - start).total_seconds() / span)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(max(v, 0), Y_MAX) / Y_MAX)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    if infusion.started_at is not None:
        shade_end = infusion.infusion_ended_at or end
        out.append(
            f'<rect class="infusion" x="{x(infusion.started_at):.1f}" y="{TOP}" '
            f'width="{max(x(shade_end) - x(infusion.started_at), 0):.1f}" height="{plot_h}" fill="#d6eaf8">'
            "<title>Infusion</title></rect>"
        )
    if infusion.infusion_ended_at is not None:
        xe = x(infusion.infusion_ended_at)
        out.append(
            f'<line class="infusion-end" x1="{xe:.1f}" y1="{TOP}" x2="{xe:.1f}" y2="{TOP + plot_h}" '
            'stroke="#1b4f72" stroke-dasharray="6 3"/>'
            f'<text x="{xe + 4:.1f}" y="{TOP + 12}" fill="#1b4f72">Infusion end</text>'
        )
    # Axes, grid and units.
    out.append(
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="black"/>'
    )
    out.append(
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="black"/>'
    )
    for v in range(0, Y_MAX + 1, 40):
        out.append(
            f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{LEFT + plot_w}" y2="{y(v):.1f}" stroke="#eee"/>'
        )
        out.append(
            f'<text class="y-tick" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
        )
    minutes = span / 60
    step = 10 if minutes <= 120 else 30
    for m in range(0, int(minutes) + 1, step):
        xm = x(start + timedelta(minutes=m))
        out.append(
            f'<text class="x-tick" x="{xm:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{m}</text>'
        )
    out.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 16}" text-anchor="middle">'
        f"Minutes from {escape(start.strftime('%Y-%m-%d %H:%M'))} UTC</text>"
    )
    out.append(
        f'<text x="18" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {TOP + plot_h / 2})">mmHg · beats/min · %</text>'
    )
    for i, (field, label, colour) in enumerate(SERIES):
        points = [
            (x(r.measured_at), y(getattr(r, field)))
            for r in readings
            if getattr(r, field) is not None
        ]
        if points:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            out.append(
                f'<polyline class="series" data-vital="{field}" points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            out.extend(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}"/>'
                for px, py in points
            )
        ly = TOP + 16 + i * 18
        out.append(
            f'<line x1="{WIDTH - RIGHT + 12}" y1="{ly - 4}" x2="{WIDTH - RIGHT + 30}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{WIDTH - RIGHT + 34}" y="{ly}">{escape(label)}</text>')
    for alert in alerts:
        ax = x(alert["first_seen_at"])
        colour = SEVERITY_COLOURS[alert["severity"]]
        out.append(
            f'<path class="alert" data-rule="{escape(alert["rule"])}" data-severity="{alert["severity"]}" '
            f'd="M {ax:.1f} {TOP + plot_h - 2} l -6 -10 l 12 0 z" fill="{colour}" stroke="black">'
            f"<title>{escape(alert['severity'])}: {escape(alert['message'])}</title></path>"
        )
    out.append("</svg>")
    return "\n".join(out)
