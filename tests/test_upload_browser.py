"""A mask uploaded through the browser's own file chooser: the real server (the `streamlit_server`
fixture of conftest.py) in headless Chromium. In the "Your data" section, clicking the uploader's
button opens the chooser, Playwright answers it with an in-memory PNG (and a text file named .png),
and the page shows the mask's class table and refuses the other file by name."""

from __future__ import annotations

import io

import numpy as np
import pytest
from browser_page import open_section, section_panel, wait_charts_drawn, wait_idle
from PIL import Image

from explorer.ui import sections

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 120_000
UPLOAD_TIMEOUT_MS = 120_000


def mask_png() -> tuple[bytes, list[int]]:
    mask = np.zeros((48, 40), np.uint8)
    mask[5:15, 5:15] = 1  # 100 pixels
    mask[30:40, 20:26] = 2  # 60 pixels
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, "PNG")
    return buffer.getvalue(), [int((mask == c).sum()) for c in range(3)]


def test_a_mask_uploaded_through_the_file_chooser_shows_its_class_table(page, streamlit_server, artifacts_dir):
    page.set_viewport_size({"width": 1500, "height": 3000})  # Streamlit scrolls inside its own container
    page.goto(streamlit_server.url, wait_until="domcontentloaded")
    page.locator(".st-key-train button").wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)

    open_section(page, sections.YOUR_DATA)
    uploader = section_panel(page).locator(".st-key-upload_masks")
    uploader.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    data, pixels = mask_png()
    with page.expect_file_chooser() as chooser:
        uploader.get_by_role("button").filter(has_text="Upload").first.click()
    assert chooser.value.is_multiple()
    chooser.value.set_files(
        files=[
            {"name": "slide_01.png", "mimeType": "image/png", "buffer": data},
            {"name": "notes.png", "mimeType": "image/png", "buffer": b"a text file, not a mask"},
        ]
    )

    # The class table: the accessible grid Streamlit renders next to its canvas holds the cells.
    table = page.locator('table[role="grid"]').filter(has_text="pixels").filter(has_text="% of images").filter(has_text="class 2")
    table.first.wait_for(state="attached", timeout=UPLOAD_TIMEOUT_MS)
    text = table.first.inner_text()
    for count in pixels:
        assert str(count) in text, f"{count} pixels missing from the class table: {text[:400]}"
    assert "class 0" in text and "class 1" in text
    # The bad file is refused by name, with its reason; nothing raised.
    refused = page.locator('[data-testid="stAlertContentError"]').filter(has_text="notes.png")
    refused.first.wait_for(state="visible", timeout=UPLOAD_TIMEOUT_MS)
    assert "not an image that can be read" in refused.first.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_text("Your classes").first.scroll_into_view_if_needed()
    wait_idle(page)
    wait_charts_drawn(page)
    section_panel(page).screenshot(path=str(artifacts_dir / "upload-class-table.png"))

    # The files stay while another section is open ("Your data" always runs: an uploader keeps its
    # files only while it is drawn): back in "Your data", the same class table and refusal.
    open_section(page, sections.SURFACES)
    open_section(page, sections.YOUR_DATA)
    table.first.wait_for(state="attached", timeout=UPLOAD_TIMEOUT_MS)
    text = table.first.inner_text()
    for count in pixels:
        assert str(count) in text, f"{count} pixels missing from the class table after another section was opened: {text[:400]}"
    refused.first.wait_for(state="visible", timeout=UPLOAD_TIMEOUT_MS)
    assert "slide_01.png" in section_panel(page).inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
