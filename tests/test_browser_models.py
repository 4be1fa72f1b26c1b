"""Models in and out in a real browser: train the smallest model on the Train page, download its
.zip, upload that .zip again, and find it in the Draw page's model picker of the same session
but not in a fresh browser's. Reuses tests/test_browser.py's server and browser."""
import io
import time
import zipfile

import pytest

from test_browser import CHROMIUM, assert_no_exception, browser, server, shot, sync_api  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def set_slider_to_minimum(page, label: str) -> None:
    thumb = page.get_by_role("slider", name=label).first  # a rerun may briefly show the old one too
    thumb.focus()
    thumb.press("Home")
    sync_api.expect(page.get_by_role("slider", name=label).last).to_have_value(thumb.get_attribute("min"),
                                                                               timeout=10_000)


def cnn_picker_options(page) -> list[str]:
    picker = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").filter(
        has_text="Convolutional autoencoder")
    picker.wait_for(timeout=30_000)
    picker.get_by_role("combobox").click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def test_download_then_upload_offers_the_model_in_this_session_only(server, browser, tmp_path):  # noqa: F811
    expect = sync_api.expect
    context = browser.new_context(viewport={"width": 1400, "height": 2200}, accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(f"{server}/train")
        start = page.get_by_role("button", name="Start training")
        start.wait_for(timeout=30_000)
        set_slider_to_minimum(page, "Epochs")  # 1 epoch of 100 digits in batches of 32: 4 steps
        set_slider_to_minimum(page, "Training digits")
        time.sleep(1.0)  # the rerun after the last slider
        expect(start).to_be_enabled(timeout=10_000)
        start.click()
        download_button = page.get_by_role("button", name="Download")
        download_button.wait_for(timeout=120_000)
        with page.expect_download(timeout=30_000) as caught:
            download_button.click()
        archive = tmp_path / caught.value.suggested_filename
        caught.value.save_as(archive)
        assert archive.suffix == ".zip"
        with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as zf:
            names = sorted(zf.namelist())
        assert [n.rsplit(".", 1)[1] for n in names] == ["json", "safetensors"]
        name = names[0].rsplit(".", 1)[0]

        uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="Its .zip")
        uploader.locator("input[type=file]").set_input_files(str(archive))
        expect(page.get_by_text("for this session only")).to_be_visible(timeout=30_000)
        assert_no_exception(page)
        shot(page, "train-upload")

        page.locator("[data-testid='stSidebarNav'] a").filter(has_text="Draw").click()  # same session
        expect(page.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=60_000)
        options = cnn_picker_options(page)
        assert any(o.startswith(f"{name} ·") and o.endswith("· uploaded") for o in options), options
        chosen = page.locator("[data-testid='stSidebar']").get_by_role("combobox", name="Convolutional autoencoder")
        assert chosen.input_value().endswith("· uploaded")  # the upload, not the file it came from, is selected
        assert_no_exception(page)
    finally:
        context.close()

    fresh = browser.new_context(viewport={"width": 1400, "height": 2200})
    try:
        page = fresh.new_page()
        page.goto(f"{server}/draw")
        options = cnn_picker_options(page)
        assert options and not any("uploaded" in o for o in options)
    finally:
        fresh.close()
