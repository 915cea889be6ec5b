"""Drives phototag's page in headless Chromium (Playwright, the system's Chromium): the
library it opens on (newest first, loaded a page at a time as it scrolls), the tag cloud,
an upload and its top-3 bars, a search for the top class, the first result's photo view
with its tags and "more like this", the near-duplicates view, and teaching a tag: photos
selected in the library and marked yes or no, the tag's page, one ✓ on a borderline
match; saves screenshots. Prints what it saw as one JSON object.

Usage: web.py URL PHOTO SCREENSHOT CHROMIUM YES_HASH NO_HASH
Run by tests/it/e2e_web.rs, which checks the JSON against the API.
"""
import json
import os
import sys
import time

from playwright.sync_api import sync_playwright

url, photo, screenshot, chromium, yes_hash, no_hash = sys.argv[1:7]
seen = {"errors": [], "library_requests": 0}
TIMEOUT = 60_000


def wait_until(page, expression):
    """Polls a JS expression with page.evaluate (wait_for_function evals strings inside
    the page, which the page's Content-Security-Policy forbids, rightly)."""
    deadline = time.monotonic() + TIMEOUT / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {TIMEOUT} ms: {expression}")
        time.sleep(0.05)


def shot(page, suffix):
    path = screenshot.replace(".png", f"-{suffix}.png") if suffix else screenshot
    page.screenshot(path=path, full_page=True)


def images_loaded(selector):
    return f"[...document.querySelectorAll('{selector}')].every(i => i.complete && i.naturalWidth > 0)"


with sync_playwright() as p:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = p.chromium.launch(executable_path=chromium, headless=True, args=args)
    # A phone-sized window: the page is meant to work there.
    page = browser.new_page(viewport={"width": 412, "height": 915}, device_scale_factor=2)
    page.set_default_timeout(TIMEOUT)
    page.on("pageerror", lambda e: seen["errors"].append(f"page error: {e}"))
    seen["busy_logged"] = 0

    def console(m):
        if m.type != "error":
            return
        # The browser logs every error status it gets; the one 503 below is made on purpose.
        if "status of 503" in m.text:
            seen["busy_logged"] += 1
        else:
            seen["errors"].append(f"console: {m.text}")

    page.on("console", console)

    def count_library(request):
        if "/api/library" in request.url:
            seen["library_requests"] += 1

    page.on("request", count_library)

    # The page opens on the library, two photos a page: it keeps loading pages while the
    # end of the grid is in view, until the last one.
    page.goto(url + "?page=2")
    page.wait_for_selector("#library-grid a img")
    wait_until(page, "document.getElementById('library-note').textContent.includes('photo')")
    seen["first_view"] = page.evaluate(
        "[...document.querySelectorAll('main > .view')].filter(v => !v.hidden).map(v => v.id)")
    seen["library"] = page.eval_on_selector_all("#library-grid a", "els => els.map(e => e.dataset.hash)")
    seen["library_note"] = page.text_content("#library-note")
    wait_until(page, images_loaded("#library-grid img"))
    seen["overflow_x_library"] = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    shot(page, "library")

    # The tag cloud has a view of its own.
    page.click("#nav a[href='#tags']")
    page.wait_for_selector("#cloud a")
    seen["cloud"] = page.eval_on_selector_all("#cloud a", "els => els.map(e => e.textContent)")

    # Upload: no preview (and no broken image) before. The first answer is a 503 with
    # Retry-After (the server busy), which the page waits out and retries; then the photo
    # and its top-3 as bars.
    page.click("#nav a[href='#upload']")
    seen["preview_hidden_before"] = page.evaluate("document.getElementById('upload-preview').hidden")
    calls = []

    def busy_once(route):
        calls.append(time.monotonic())
        if len(calls) == 1:
            route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json",
                          body='{"error": "busy classifying other uploads; try again in a moment"}')
        else:
            route.continue_()

    page.route("**/api/classify", busy_once)
    page.set_input_files("#file", photo)
    seen["busy_status"] = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not seen["busy_status"]:
        text = page.text_content("#upload-status") or ""
        if "again" in text:
            seen["busy_status"] = text
        time.sleep(0.05)
    page.wait_for_selector("#classified:not([hidden]) #top3 li")
    seen["top3"] = page.eval_on_selector_all(
        "#top3 li",
        """els => els.map(e => ({class: e.dataset.class,
                              probability: e.querySelector('.prob').textContent,
                              width: e.querySelector('.fill').style.width}))""",
    )
    seen["model"] = page.text_content("#upload-status")
    wait_until(page, "(() => { const i = document.getElementById('upload-preview'); return !i.hidden && i.naturalWidth > 0; })()")
    shot(page, "upload")
    seen["classify_calls"] = len(calls)
    seen["retry_wait"] = calls[1] - calls[0] if len(calls) > 1 else None
    page.unroute("**/api/classify")

    # Search the top class with the query language, in the search box.
    top = seen["top3"][0]["class"]
    page.fill("#q", f'"{top}"')
    page.press("#q", "Enter")
    page.wait_for_selector("#grid a img")
    seen["results_title"] = page.text_content("#results-title")
    seen["grid"] = page.eval_on_selector_all("#grid a", "els => els.map(e => e.dataset.hash)")
    wait_until(page, images_loaded("#grid img"))
    seen["overflow_x"] = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    shot(page, "search")

    # Open the first result: the photo view with its tags and more like it.
    page.click("#grid a >> nth=0")
    page.wait_for_selector("#viewer[open] #view-tags li")
    wait_until(
        page, "(() => { const i = document.getElementById('view-img'); return i.complete && i.naturalWidth > 0; })()"
    )
    page.wait_for_selector("#view-similar a img")
    wait_until(page, images_loaded("#view-similar img"))
    seen["hash"] = page.evaluate("new URLSearchParams(location.hash.slice(1)).get('photo')")
    seen["view_tags"] = page.eval_on_selector_all("#view-tags li", "els => els.map(e => e.dataset.class)")
    seen["view_title"] = page.text_content("#view-title")
    seen["view_paths"] = page.eval_on_selector_all("#view-paths li", "els => els.map(e => e.textContent)")
    seen["similar"] = page.eval_on_selector_all(
        "#view-similar a", "els => els.map(e => ({hash: e.dataset.hash, score: Number(e.dataset.score)}))")
    shot(page, "")

    # A photo in "more like this" opens in the same view.
    first_similar = seen["similar"][0]["hash"]
    page.click("#view-similar a >> nth=0")
    wait_until(page, f"new URLSearchParams(location.hash.slice(1)).get('photo') === '{first_similar}'")
    page.wait_for_selector("#viewer[open] #view-tags li")
    seen["opened_similar"] = page.evaluate("new URLSearchParams(location.hash.slice(1)).get('photo')")

    # Back twice closes the view and keeps the results.
    page.go_back()
    page.go_back()
    wait_until(page, "!document.getElementById('viewer').open")
    seen["grid_after_back"] = len(page.query_selector_all("#grid a"))

    # The near-duplicates view: groups, the best photo first.
    page.click("#nav a[href='#dupes']")
    page.wait_for_selector("#dupes-groups .dupe-group a img")
    wait_until(page, images_loaded("#dupes-groups img"))
    seen["dupes"] = page.eval_on_selector_all(
        "#dupes-groups .dupe-group",
        "gs => gs.map(g => [...g.querySelectorAll('a')].map(a => ({hash: a.dataset.hash, similarity: Number(a.dataset.similarity)})))",
    )
    seen["dupes_note"] = page.text_content("#dupes-note")
    seen["overflow_x_dupes"] = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    shot(page, "dupes")

    # Teach a tag: select photos in the library, mark one yes and one no, name it, Teach.
    page.click("#nav a[href='#']")
    page.wait_for_selector("#library-grid a img")
    page.click("#select-start")
    page.wait_for_selector("#teach-bar:not([hidden])")
    page.click(f"#library-grid a[data-hash='{yes_hash}']")
    page.check("#teach-bar input[name=mark][value=no]")
    page.click(f"#library-grid a[data-hash='{no_hash}']")
    seen["marked"] = page.eval_on_selector_all(
        "#library-grid a[data-mark]", "els => els.map(e => ({hash: e.dataset.hash, mark: e.dataset.mark}))")
    seen["teach_count"] = page.text_content("#teach-count")
    seen["hash_while_selecting"] = page.evaluate("location.hash")
    seen["overflow_x_teach"] = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    shot(page, "select")
    page.fill("#teach-name", "tangerine")
    page.click("#teach-go")
    # The tag's page: its figures, borderline and best matches, each with ✓ and ✗.
    wait_until(page, "location.hash === '#taught=tangerine'")
    page.wait_for_selector("#tag-page:not([hidden]) #tag-borderline .judged-tile")
    wait_until(page, images_loaded("#tag-page img"))
    seen["tag_title"] = page.text_content("#tag-title")
    seen["tag_figures"] = page.text_content("#tag-figures")
    seen["tag_borderline"] = page.eval_on_selector_all(
        "#tag-borderline .judged-tile", "els => els.map(e => e.dataset.hash)")
    seen["tag_best"] = page.eval_on_selector_all("#tag-best .judged-tile", "els => els.map(e => e.dataset.hash)")
    seen["tag_examples"] = page.eval_on_selector_all(
        "#tag-examples a", "els => els.map(e => ({hash: e.dataset.hash, yes: e.classList.contains('yes')}))")
    # One click: the first borderline photo is a tangerine too.
    judged = seen["tag_borderline"][0]
    seen["judged"] = judged
    page.click(f"#tag-borderline .judged-tile[data-hash='{judged}'] button.judge.yes")
    wait_until(page, "document.getElementById('tag-status').textContent.includes('refitted')")
    page.wait_for_selector(f"#tag-examples a[data-hash='{judged}']")
    wait_until(page, images_loaded("#tag-page img"))
    seen["tag_status"] = page.text_content("#tag-status")
    seen["tag_examples_after"] = page.eval_on_selector_all(
        "#tag-examples a", "els => els.map(e => ({hash: e.dataset.hash, yes: e.classList.contains('yes')}))")
    seen["tag_borderline_after"] = page.eval_on_selector_all(
        "#tag-borderline .judged-tile", "els => els.map(e => e.dataset.hash)")
    seen["tag_best_after"] = page.eval_on_selector_all("#tag-best .judged-tile", "els => els.map(e => e.dataset.hash)")
    seen["overflow_x_tag"] = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    shot(page, "teach")
    # The taught tags list links to it.
    page.click("#nav a[href='#taught']")
    page.wait_for_selector("#taught-list a")
    seen["taught_list"] = page.eval_on_selector_all("#taught-list a", "els => els.map(e => e.dataset.name)")
    browser.close()

print(json.dumps(seen))
