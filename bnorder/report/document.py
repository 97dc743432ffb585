"""A report as a list of blocks, rendered twice: Markdown (PNG files beside it) and one
self-contained HTML file (the same PNGs embedded as data URIs)."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Document", "Figure", "Heading", "Paragraph", "Table"]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str  # plain text; bullet lists as lines starting with "- "


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    path: Path  # a PNG written next to the report
    caption: str


@dataclass
class Document:
    title: str
    blocks: list[Heading | Paragraph | Table | Figure] = field(default_factory=list)

    def add(self, *blocks: Heading | Paragraph | Table | Figure) -> None:
        self.blocks.extend(blocks)

    # ---------------------------------------------------------------- Markdown
    def markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if isinstance(b, Heading):
                out += [f"{'#' * b.level} {b.text}", ""]
            elif isinstance(b, Paragraph):
                out += [b.text, ""]
            elif isinstance(b, Table):
                out += ([f"*{b.caption}*", ""] if b.caption else []) + [_md_table(b.frame), ""]
            else:
                out += [
                    f"![{b.caption}]({b.path.relative_to(base).as_posix()})",
                    "",
                    f"*{b.caption}*",
                    "",
                ]
        return "\n".join(out)

    # ---------------------------------------------------------------- HTML
    def html(self) -> str:
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for b in self.blocks:
            if isinstance(b, Heading):
                parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
            elif isinstance(b, Paragraph):
                parts.append(_html_paragraph(b.text))
            elif isinstance(b, Table):
                caption = f"<caption>{html.escape(b.caption)}</caption>" if b.caption else ""
                table = _display(b.frame).to_html(index=False, border=0, escape=True)
                parts.append(table.replace(">", f">{caption}", 1))  # caption right after <table>
            else:
                data = base64.b64encode(b.path.read_bytes()).decode()
                alt = html.escape(b.caption)
                parts.append(
                    f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{alt}</figcaption></figure>"
                )
        parts.append("</body></html>")
        return "\n".join(parts)


# Tables fit the page: they may not grow past it, headers wrap, long cells (notes, arm IDs)
# break anywhere rather than push the table wider (checked in a real browser at 1280 px).
_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.45;color:#222}table{border-collapse:collapse;margin:0.5rem 0 1.5rem;"
    "font-size:0.8rem;max-width:100%}th,td{padding:0.25rem 0.5rem;border-bottom:1px solid #ddd;"
    "text-align:right;vertical-align:top;overflow-wrap:anywhere}"
    "th{background:#f4f4f4;white-space:normal}caption{caption-side:top;text-align:left;"
    "font-style:italic;padding-bottom:0.3rem}img{max-width:100%}figure{margin:1rem 0 2rem}"
    "figcaption{font-style:italic;color:#555}li{margin:0.2rem 0}"
)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """Percent columns (the seed's table) with 2 decimals, like the notebook; others by size."""
    return frame.apply(
        lambda col: col.map(
            (lambda v: f"{v:.2f}" if isinstance(v, float) and v == v else _fmt(v))
            if "%" in str(col.name) or str(col.name).startswith("Run ")
            else _fmt
        )
    )


def _md_table(frame: pd.DataFrame) -> str:
    shown = _display(frame)
    head = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    rows = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in shown.itertuples(index=False)
    ]
    return "\n".join([head, rule, *rows])


def _html_paragraph(text: str) -> str:
    lines = text.splitlines()
    if lines and all(line.startswith("- ") for line in lines):
        items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in lines)
        return f"<ul>{items}</ul>"
    return f"<p>{html.escape(text)}</p>"
