"""A shared view in a real browser: make choices on a page, take the link it shows, open that link
in a fresh browser context (no cookies, no session) and find the same view. Uses the server and
browser of tests/test_browser.py; skipped without /usr/bin/chromium."""
import re

import numpy as np
import pytest

from test_browser import CHROMIUM, assert_no_exception, browser, server, sync_api  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
LINK = "[data-testid='stSidebar'] [data-testid='stCode'] code"
CNN_PICKER = "[data-testid='stSidebar'] [data-testid='stSelectbox']:has-text('Convolutional autoencoder')"


def digit_caption(page) -> str:
    caption = page.get_by_text(re.compile(r"^test digit #\d+ · label \d$")).first
    caption.wait_for(timeout=30_000)
    return caption.inner_text()


def chosen_model(page) -> str:
    return page.locator(CNN_PICKER).get_by_role("combobox").input_value(timeout=30_000)


def test_a_gallery_link_opens_the_same_view_in_a_fresh_browser(server, browser):
    from ae.sample import load_sample

    fourth_seven = int(np.flatnonzero(load_sample().labels.numpy() == 7)[3])  # the server has the sample only
    expect = sync_api.expect
    first = browser.new_context(viewport={"width": 1400, "height": 1600})
    try:
        page = first.new_page()
        page.goto(f"{server}/gallery")
        digit_caption(page)
        before = chosen_model(page)
        page.locator(CNN_PICKER).click()
        options = page.get_by_role("option")
        model = next(t for t in options.all_inner_texts() if t != before)  # not the default
        options.filter(has_text=model).first.click()
        expect(page.locator(CNN_PICKER).get_by_role("combobox")).to_have_value(model, timeout=30_000)
        position = page.locator("[data-testid='stNumberInput'] input").first
        position.fill("4")
        position.press("Enter")
        expect(page.get_by_text(f"test digit #{fourth_seven} · label 7")).to_be_visible(timeout=30_000)
        page.wait_for_url(re.compile(r"digit=class(:|%3A)7(:|%3A)4"), timeout=30_000)
        link = page.locator(LINK).inner_text().strip()
        assert link.startswith(f"{server}/gallery?") and "digit=class:7:4" in link, link
        assert_no_exception(page)
    finally:
        first.close()
    fresh = browser.new_context(viewport={"width": 1400, "height": 1600})
    try:
        page = fresh.new_page()
        page.goto(link)
        assert digit_caption(page) == f"test digit #{fourth_seven} · label 7"
        assert chosen_model(page) == model
        expect(page.locator(LINK)).to_have_text(link, timeout=30_000)  # the same view, the same link
        assert_no_exception(page)
        page.goto(f"{server}/gallery?digit=index:123456&cnn=nope")  # stale values: defaults and a note
        expect(page.get_by_text("was not used").first).to_be_visible(timeout=30_000)  # a toast, 10 s
        digit_caption(page)
        assert_no_exception(page)
    finally:
        fresh.close()
