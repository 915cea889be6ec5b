"""Drives phototag's page in headless Chromium (Playwright, the system's Chromium):
uploads a photo and reads the top-3 bars, searches the top class, opens the first result
and reads its tags, and saves a screenshot. Prints what it saw as one JSON object.

Usage: web.py URL PHOTO SCREENSHOT CHROMIUM
Run by tests/e2e_web.rs, which checks the JSON against the API.
"""
import json
import os
import sys
import time

from playwright.sync_api import sync_playwright

url, photo, screenshot, chromium = sys.argv[1:5]
seen = {"errors": []}
TIMEOUT = 60_000


def wait_until(page, expression):
    """Polls a JS expression with page.evaluate (wait_for_function evals strings inside
    the page, which the page's Content-Security-Policy forbids, rightly)."""
    deadline = time.monotonic() + TIMEOUT / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {TIMEOUT} ms: {expression}")
        time.sleep(0.05)

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

    page.goto(url)
    page.wait_for_selector("#cloud a")
    seen["cloud"] = page.eval_on_selector_all("#cloud a", "els => els.map(e => e.textContent)")

    # Upload: the first answer is a 503 with Retry-After (the server busy), which the page
    # waits out and retries; then the top-3 appear as bars.
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
    wait_until(
        page, "[...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)"
    )

    seen["overflow_x"] = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.screenshot(path=screenshot.replace(".png", "-search.png"), full_page=True)

    # Open the first result: the photo view with its tags.
    page.click("#grid a >> nth=0")
    page.wait_for_selector("#viewer[open] #view-tags li")
    wait_until(
        page, "(() => { const i = document.getElementById('view-img'); return i.complete && i.naturalWidth > 0; })()"
    )
    seen["hash"] = page.evaluate("new URLSearchParams(location.hash.slice(1)).get('photo')")
    seen["view_tags"] = page.eval_on_selector_all("#view-tags li", "els => els.map(e => e.dataset.class)")
    seen["view_title"] = page.text_content("#view-title")
    seen["view_paths"] = page.eval_on_selector_all("#view-paths li", "els => els.map(e => e.textContent)")
    page.screenshot(path=screenshot, full_page=True)

    # Back closes the view and keeps the results.
    page.go_back()
    wait_until(page, "!document.getElementById('viewer').open")
    seen["grid_after_back"] = len(page.query_selector_all("#grid a"))
    browser.close()

print(json.dumps(seen))
