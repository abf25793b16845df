"""A letter as a one-page PDF with the business's letterhead, made with fpdf2: Unicode fonts
(DejaVu Sans by default, subset once per process to the scripts letters use: Latin, Greek and
Hebrew, so each PDF is quick; other scripts are left out), text shaping by HarfBuzz,
right-to-left paragraphs for Hebrew. fpdf2 and fontTools are imported when the first PDF is
made, not when the plugin loads (they cost every CLI command some 0.4 s otherwise)."""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import unicodedata
from datetime import date
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

from helpdesk import ValidationError

# Latin (with Latin Extended-A), Greek, Hebrew, punctuation, currency and letter-like symbols:
# a smaller font parses faster, so each PDF is made quicker.
SCRIPT_RANGES = (
    (0x20, 0x17F),
    (0x370, 0x3FF),
    (0x590, 0x5FF),
    (0x2000, 0x206F),
    (0x20A0, 0x20CF),
    (0x2100, 0x214F),
    (0xFB1D, 0xFB4F),
)
RTL_LANGUAGES = frozenset({"he", "iw", "ar", "fa", "ur", "yi"})


@functools.lru_cache(maxsize=8)
def _subset_font(path: str, stamp: float) -> str:
    """The font at ``path`` cut to ``SCRIPT_RANGES`` (its layout tables kept for shaping),
    written once to the temporary directory; returns that file's path."""
    key = hashlib.sha256(f"{path}:{stamp}".encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"helpdesk-letters-{key}.ttf"
    if target.is_file():
        return str(target)
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(path)
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(
        unicodes=[c for first, last in SCRIPT_RANGES for c in range(first, last + 1)]
    )
    subsetter.subset(font)
    partial = target.with_suffix(f".{os.getpid()}.part")
    font.save(partial)
    os.replace(partial, target)
    return str(target)


def _font(setting: str) -> str:
    path = current_app.config[setting]
    try:
        stamp = os.stat(path).st_mtime
    except OSError:
        raise ValidationError(
            {
                "pdf": _(
                    "The PDF font %(path)s is not installed (setting %(s)s).", path=path, s=setting
                )
            }
        ) from None
    return _subset_font(path, stamp)


def right_to_left(text: str, language: str | None) -> bool:
    """Whether the letter reads right to left: by its language, else its first strong letter."""
    if language and language.split("-")[0].lower() in RTL_LANGUAGES:
        return True
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def letter_pdf(subject: str, text: str, *, language: str | None = None) -> bytes:
    """The letter on one page (more if it is long) under the letterhead: the business's name,
    the ``LETTERS_LETTERHEAD`` lines and the date; then the subject and the text."""
    config = current_app.config
    rtl = right_to_left(f"{subject}\n{text}", language)
    align = "R" if rtl else "L"
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(subject)
    pdf.set_creator(config["HELPDESK_NAME"])
    pdf.add_font("Letter", "", _font("LETTERS_PDF_FONT"))  # one font: each costs a parse
    pdf.set_margins(20, 18, 20)
    pdf.add_page()
    # The letterhead's lines read in their own direction (a Latin address in a Hebrew letter).
    pdf.set_text_shaping(use_shaping_engine=True)
    pdf.set_font("Letter", "", 18)
    pdf.cell(0, 9, config["HELPDESK_NAME"], new_x="LMARGIN", new_y="NEXT", align=align)
    pdf.set_font("Letter", "", 9)
    for line in str(config["LETTERS_LETTERHEAD"]).splitlines():
        pdf.cell(0, 4.5, line, new_x="LMARGIN", new_y="NEXT", align=align)
    pdf.set_text_shaping(use_shaping_engine=True, direction="rtl" if rtl else "ltr")
    pdf.ln(2)
    pdf.line(20, pdf.get_y(), 190, pdf.get_y())
    pdf.ln(6)
    pdf.set_font("Letter", "", 10)
    pdf.cell(
        0, 5, date.today().isoformat(), new_x="LMARGIN", new_y="NEXT", align="L" if rtl else "R"
    )
    pdf.ln(4)
    pdf.set_font("Letter", "", 13)
    pdf.multi_cell(0, 6.5, subject, align=align, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Letter", "", 11)
    pdf.multi_cell(0, 5.8, text.replace("\r\n", "\n"), align=align, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
