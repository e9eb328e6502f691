"""A scan report on paper: page 1 is a summary an analyst can hand to a colleague (file, hashes,
verdict, a chart of the eight categories, the detections); the full engine table follows, its
header repeated on every page. Every page carries the page number and when it was generated."""

from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .report import SEVERITY, by_severity

VERDICT_COLORS = {
    "malicious": colors.HexColor("#B71C1C"),
    "suspicious": colors.HexColor("#E65100"),
    "clean": colors.HexColor("#1B5E20"),
    "unknown": colors.HexColor("#546E7A"),
}
CATEGORY_COLORS = {
    "malicious": colors.HexColor("#C62828"),
    "suspicious": colors.HexColor("#EF6C00"),
    "undetected": colors.HexColor("#78909C"),
    "harmless": colors.HexColor("#2E7D32"),
    "type-unsupported": colors.HexColor("#9E9E9E"),
    "failure": colors.HexColor("#6D4C41"),
    "timeout": colors.HexColor("#BDBDBD"),
    "confirmed-timeout": colors.HexColor("#8D6E63"),
}
ROW_TINTS = {"malicious": colors.HexColor("#FDECEA"), "suspicious": colors.HexColor("#FFF3E0")}
GRID = colors.HexColor("#CFD8DC")
HEADER_FILL = colors.HexColor("#ECEFF1")
MARGIN = 18 * mm
DETECTIONS_ON_SUMMARY = 12
CELL_PADDING = 6  # reportlab's default left and right padding in a table cell
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# DejaVu covers Latin, Greek and Cyrillic file names; reportlab's own Vera (its ancestor) is the
# fallback wherever DejaVu is not installed.
_FONT_CANDIDATES = (
    (Path("/usr/share/fonts/truetype/dejavu"), "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    (Path(reportlab.__file__).parent / "fonts", "Vera.ttf", "VeraBd.ttf"),
)
MONO = "Courier"


def _register_fonts() -> tuple[str, str]:
    for folder, regular, bold in _FONT_CANDIDATES:
        if (folder / regular).is_file() and (folder / bold).is_file():
            pdfmetrics.registerFont(TTFont("ReportSans", str(folder / regular)))
            pdfmetrics.registerFont(TTFont("ReportSans-Bold", str(folder / bold)))
            return "ReportSans", "ReportSans-Bold"
    return "Helvetica", "Helvetica-Bold"


SANS, SANS_BOLD = _register_fonts()


def _style(name: str, size: float, font: str = SANS, **kwargs: Any) -> ParagraphStyle:
    return ParagraphStyle(name, fontName=font, fontSize=size, leading=size * 1.25, **kwargs)


STYLES = {
    "title": _style("title", 18, SANS_BOLD, spaceAfter=2),
    "subtitle": _style("subtitle", 9, textColor=colors.HexColor("#546E7A"), spaceAfter=8),
    "h2": _style("h2", 12, SANS_BOLD, spaceBefore=10, spaceAfter=4),
    "label": _style("label", 8.5, SANS_BOLD, textColor=colors.HexColor("#37474F")),
    "value": _style("value", 8.5),
    "mono": _style("mono", 8, MONO),
    "cell": _style("cell", 7.5),
    "cell_bold": _style("cell_bold", 7.5, SANS_BOLD),
    "verdict": _style("verdict", 24, SANS_BOLD, textColor=colors.white),
    "verdict_note": _style("verdict_note", 10, textColor=colors.white, alignment=TA_RIGHT),
    "note": _style("note", 8, textColor=colors.HexColor("#546E7A")),
}


def _text(value: Any) -> str:
    """Safe inside a Paragraph: markup escaped, control characters gone."""
    return escape(_CONTROL.sub("", "" if value is None else str(value)))


def _p(value: Any, style: str = "value") -> Paragraph:
    return Paragraph(_text(value) or "&#8212;", STYLES[style])


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "not yet"


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    amount, unit = float(size), "bytes"
    for next_unit in ("KiB", "MiB", "GiB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, next_unit
    exact = f"{size:,} bytes"
    return exact if unit == "bytes" else f"{amount:.1f} {unit} ({exact})"


# What the banner says for a scan that ended without verdicts; its words, never a stage name.
OUTCOMES = {
    "failed": ("FAILED", "The scan failed"),
    "not_found": ("NOT FOUND", "VirusTotal does not know this file and it was not uploaded"),
}


def _verdict_word(report: dict[str, Any]) -> str:
    if report["status"] == "completed":
        return report["verdict"].upper()
    return OUTCOMES.get(report["status"], ("NOT FINISHED", ""))[0]


def _verdict_note(report: dict[str, Any]) -> str:
    summary = report["summary"]
    if report["status"] != "completed":
        note = OUTCOMES.get(report["status"], ("", "The scan is not finished yet"))[1]
        return f"{note}: {report['error']}" if report["status"] == "failed" and report.get("error") else note
    judged = sum(summary[c] or 0 for c in ("malicious", "suspicious", "undetected", "harmless"))
    if report["verdict"] == "unknown":
        return "No engine gave a verdict"
    flagged = summary["malicious"] if report["verdict"] != "suspicious" else summary["suspicious"]
    word = "suspicious" if report["verdict"] == "suspicious" else "malicious"
    return f"{flagged} of {judged} engines found it {word}"


def _verdict_banner(report: dict[str, Any]) -> Table:
    banner = Table(
        [[Paragraph(_text(_verdict_word(report)), STYLES["verdict"]), _p(_verdict_note(report), "verdict_note")]],
        colWidths=["40%", "60%"],
    )
    banner.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), VERDICT_COLORS[report["verdict"]]),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 10),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 12),
                ("LEFTPADDING", (0, 0), (-1, -1), 12),
                ("RIGHTPADDING", (0, 0), (-1, -1), 12),
            ]
        )
    )
    return banner


def _details(report: dict[str, Any]) -> Table:
    link = report["permalink"]
    rows = [
        ("File name", _p(report["filename"])),
        ("Size", _p(human_size(report["file_size"]))),
        ("Type", _p(report["mime_type"])),
        ("MD5", _p(report["hash_md5"], "mono")),
        ("SHA-1", _p(report["hash_sha1"], "mono")),
        ("SHA-256", _p(report["hash_sha256"], "mono")),
        ("Scan date", _p(_when(report["scan_date"]))),
        ("Status", _p(report["status"])),
        ("Detection ratio", _p(report["detection_ratio"] or "n/a")),
        ("Scan ID", _p(report["scan_id"], "mono")),
        ("VirusTotal", Paragraph(f'<link href="{_text(link)}" color="blue">{_text(link)}</link>', STYLES["value"])),
    ]
    table = Table([[_p(label, "label"), value] for label, value in rows], colWidths=[32 * mm, None])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -2), 0.25, GRID),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def category_chart(summary: dict[str, Any], width: float) -> Drawing:
    """One horizontal bar per category, worst at the top, each with its count."""
    categories = list(SEVERITY)
    values = [summary[c] or 0 for c in categories]
    height = 16 * len(categories) + 20
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = 95, 10
    chart.width, chart.height = width - 135, height - 20
    # The category axis runs bottom-up, so reverse to read worst first from the top.
    chart.data = [values[::-1]]
    chart.categoryAxis.categoryNames = categories[::-1]
    chart.categoryAxis.labels.fontName = SANS
    chart.categoryAxis.labels.fontSize = 8
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.dx = -4
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max(values + [1]) * 1.1
    chart.valueAxis.visible = False
    chart.bars.strokeColor = None
    chart.barLabelFormat = "%d"
    chart.barLabels.fontName = SANS
    chart.barLabels.fontSize = 8
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3
    for i, category in enumerate(categories[::-1]):
        chart.bars[(0, i)].fillColor = CATEGORY_COLORS[category]
    drawing.add(chart)
    return drawing


def _fitted(texts: list[str], style: str = "cell") -> float:
    """The width a column needs to show the longest of `texts` on one line."""
    font = STYLES[style]
    return max(pdfmetrics.stringWidth(text, font.fontName, font.fontSize) for text in texts) + 2 * CELL_PADDING + 1


def _engine_table(engines: list[dict[str, Any]], columns: list[tuple[str, str, float]]) -> Table:
    header = [_p(title, "cell_bold") for title, _, _ in columns]
    body = [[_p(engine.get(key), "cell") for _, key, _ in columns] for engine in engines]
    table = Table([header, *body], colWidths=[width for _, _, width in columns], repeatRows=1)
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    for row, engine in enumerate(engines, start=1):
        tint = ROW_TINTS.get(engine["category"])
        if tint is not None:
            style.append(("BACKGROUND", (0, row), (-1, row), tint))
    table.setStyle(TableStyle(style))
    return table


class _NumberedCanvas(Canvas):
    """Holds every page back until the end, so each footer can say "page X of Y"."""

    footer_note = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []

    def showPage(self) -> None:  # noqa: N802  reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for state in self._pages:
            self.__dict__.update(state)
            self._footer(len(self._pages))
            super().showPage()
        super().save()

    def _footer(self, page_count: int) -> None:
        width, _ = self._pagesize
        self.setFont(SANS, 7.5)
        self.setFillColor(colors.HexColor("#78909C"))
        self.drawString(MARGIN, 10 * mm, self.footer_note)
        self.drawRightString(width - MARGIN, 10 * mm, f"Page {self._pageNumber} of {page_count}")


def render_pdf(report: dict[str, Any], generated_at: datetime) -> bytes:
    """The report as a PDF document (bytes)."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=f"Scan report: {_CONTROL.sub('', report['filename'])}",
        subject=f"VirusTotal scan of {report['hash_sha256']}",
        creator="scanner",
    )
    width = doc.width
    engines = by_severity(report["results"])
    detections = [e for e in engines if e["category"] in ("malicious", "suspicious")]
    category_width = _fitted(list(SEVERITY))

    story: list[Any] = [
        Paragraph("File scan report", STYLES["title"]),
        _p(f"{report['filename']} \u00b7 scanned with VirusTotal", "subtitle"),
        _verdict_banner(report),
        Spacer(1, 8),
        _details(report),
        KeepTogether(
            [Paragraph("Engine verdicts by category", STYLES["h2"]), category_chart(report["summary"], width)]
        ),
    ]
    if detections:
        shown = detections[:DETECTIONS_ON_SUMMARY]
        columns = [("Engine", "engine_name", width * 0.3), ("Category", "category", category_width)]
        columns.append(("Result", "result", width * 0.7 - category_width))
        story += [Paragraph(f"Detections ({len(detections)})", STYLES["h2"]), _engine_table(shown, columns)]
        if len(detections) > len(shown):
            story.append(_p(f"and {len(detections) - len(shown)} more in the full table", "note"))
    if engines:
        # Categories and dates never wrap: their columns are as wide as their longest value.
        updated_width = _fitted(["Updated", "0000-00-00"])
        columns = [
            ("Engine", "engine_name", width * 0.22),
            ("Version", "engine_version", width * 0.17),
            ("Updated", "update_date", updated_width),
            ("Category", "category", category_width),
            ("Result", "result", width * 0.61 - updated_width - category_width),
        ]
        story += [
            PageBreak(),
            Paragraph(f"All engine results ({len(engines)})", STYLES["h2"]),
            _engine_table(engines, columns),
        ]

    canvas_class = type("ReportCanvas", (_NumberedCanvas,), {"footer_note": _footer_note(report, generated_at)})
    doc.build(story, canvasmaker=canvas_class)
    return buffer.getvalue()


def _footer_note(report: dict[str, Any], generated_at: datetime) -> str:
    return f"Generated {_when(generated_at)} by scanner \u00b7 scan {report['scan_id']}"
