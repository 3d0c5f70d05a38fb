"""Draw docs/performance.svg from bench/figures.json (standard library only).

One horizontal bar per benchmark target: how far the current figure is from its
target, 100% meaning just met. Floors (``min``: at least the target) plot
measured / target, ceilings (``max``: at most the target) target / measured,
issue 17's CPU cut (``cut``) the cut achieved / the cut wanted, and ``zero``
(no errors allowed) 100% when met, 0% otherwise. Green: met; red: not met;
hatched: measured on a loaded machine.

    python bench/plot.py [figures.json] [out.svg]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
CAP = 300.0  # bars longer than this (per cent) are cut short

LABEL_W = 230  # left column: benchmark names
BAR_W = 420  # 0 .. CAP per cent
VALUE_GAP = 80  # room for the per cent after the longest bar
VALUE_W = 190  # right column: the measured figure
ROW_H = 22
TOP = 70
BOTTOM = 40


def percent(row: dict) -> float:
    """How far the measured figure is from its target, 100 = just met."""
    kind, target, measured = row["kind"], row["target"], row["measured"]
    if kind == "min":
        return 100.0 * measured / target
    if kind == "max":
        return 100.0 * target / measured
    if kind == "cut":
        return 100.0 * measured / target
    if kind == "zero":
        return 100.0 if measured == 0 else 0.0
    raise ValueError(f"unknown kind {kind!r} in row {row['name']!r}")


def text(x: float, y: float, s: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(s)}</text>'


def render(figures: dict) -> str:
    rows = figures["rows"]
    width = LABEL_W + BAR_W + VALUE_GAP + VALUE_W
    height = TOP + ROW_H * len(rows) + BOTTOM
    x0 = LABEL_W

    def x_of(pct: float) -> float:
        return x0 + BAR_W * min(pct, CAP) / CAP

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        "<defs>"
        '<pattern id="loaded" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="white" fill-opacity="0"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="white" stroke-width="2"/>'
        "</pattern></defs>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        text(10, 20, figures["title"], font_weight="bold", font_size="14"),
    ]
    out += [
        text(10, 38 + 13 * n, line, font_size="10", fill="#555")
        for n, line in enumerate(figures["note"])
    ]
    # grid every 50%, the 100% line stronger
    for pct in range(0, int(CAP) + 1, 50):
        x = x_of(pct)
        style = (
            'stroke="#000" stroke-width="1.5" stroke-dasharray="4 3"'
            if pct == 100
            else 'stroke="#ddd" stroke-width="1"'
        )
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" '
            f'y2="{TOP + ROW_H * len(rows)}" {style}/>'
        )
        out.append(text(x, TOP + ROW_H * len(rows) + 14, f"{pct}%", text_anchor="middle"))
    for i, row in enumerate(rows):
        y = TOP + ROW_H * i
        pct = percent(row)
        met = pct >= 100.0
        colour = "#3a923a" if met else "#c83c3c"
        bar_end = x_of(pct)
        out.append(text(LABEL_W - 8, y + 15, row["name"], text_anchor="end"))
        out.append(
            f'<rect x="{x0}" y="{y + 4}" width="{bar_end - x0:.1f}" '
            f'height="{ROW_H - 8}" fill="{colour}"/>'
        )
        if row.get("loaded"):
            out.append(
                f'<rect x="{x0}" y="{y + 4}" width="{bar_end - x0:.1f}" '
                f'height="{ROW_H - 8}" fill="url(#loaded)"/>'
            )
        shown = f"{pct:.0f}%" + (" (cut)" if pct > CAP else "")
        out.append(text(bar_end + 4, y + 15, shown, font_size="10", fill="#333"))
        out.append(text(x0 + BAR_W + VALUE_GAP, y + 15, row["label"], font_size="11"))
    # the 100% line again, over the bars
    out.append(
        f'<line x1="{x_of(100):.1f}" y1="{TOP - 4}" x2="{x_of(100):.1f}" '
        f'y2="{TOP + ROW_H * len(rows)}" stroke="#000" stroke-width="1.5" '
        'stroke-dasharray="4 3"/>'
    )
    out.append(
        text(
            10,
            height - 8,
            "green: met; red: not met; hatched: measured on a loaded machine",
            font_size="10",
            fill="#555",
        )
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else ROOT / "bench" / "figures.json"
    dst = Path(argv[2]) if len(argv) > 2 else ROOT / "docs" / "performance.svg"
    figures = json.loads(src.read_text(encoding="utf-8"))
    dst.write_text(render(figures), encoding="utf-8")
    print(f"wrote {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
