"""Reading PDFs back in tests, with Debian's poppler-utils (installed on demand)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.system_packages import ensure_command


def pdf_text(path: Path, *options: str) -> str:
    """The text of the PDF at ``path`` as pdftotext extracts it (``options`` e.g. ``-layout``)."""
    pdftotext = ensure_command("pdftotext", "poppler-utils")
    command = [pdftotext, *options, str(path), "-"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def render_first_page_png(path: Path, output_stem: Path, resolution: int = 60) -> Path:
    """The PDF's first page rendered to ``<output_stem>.png`` by pdftoppm."""
    pdftoppm = ensure_command("pdftoppm", "poppler-utils")
    command = [pdftoppm, "-png", "-r", str(resolution), "-singlefile", str(path), str(output_stem)]
    subprocess.run(command, check=True)
    return output_stem.with_suffix(".png")
