#!/usr/bin/env python3
"""Browser test of `klaviyo-relay serve`'s settings page in headless Chromium (selenium).

Run by Tests/IntegrationTests/ServeTests.swift, which starts `serve` and klaviyo-sim and passes:
  --settings-url URL   a signed /settings/klaviyo link for a fresh account
  --return-to URL      the return_to inside that link
  --api-key KEY        a valid private key of the same Klaviyo account in the sim
  --expect-synced-events N  (optional) the sync status recorded for the account before the run: N events
                       synced minutes ago and an older refusal whose Klaviyo title is "<i>Forbidden</i>"
Prints one JSON object {"ok": bool, "steps": [...], "error": "..."} and exits 0 only if every step passed.
Waits are bounded waits on page conditions (WebDriverWait), never blind sleeps.
"""
import argparse
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

steps = []


def step(name, condition, detail=""):
    steps.append({"step": name, "ok": bool(condition), "detail": detail})
    if not condition:
        raise AssertionError(f"{name}: {detail}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings-url", required=True)
    parser.add_argument("--return-to", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--expect-synced-events", type=int)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = args.chromium
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    wait = WebDriverWait(driver, 20)

    def read(fn):
        """Calls fn(driver) until it returns something truthy. Chromium reports an element whose page was just
        replaced either as stale or as a generic inspector error ("Node ... does not belong to the document"),
        so every read treats any WebDriver error as "not ready yet" and tries again (bounded by `wait`)."""

        def attempt(d):
            try:
                return fn(d) or False
            except WebDriverException:
                return False

        return wait.until(attempt)

    def text_of(element_id):
        return read(lambda d: d.find_element(By.ID, element_id).text.strip())

    def status():
        return text_of("status")

    def mark_page():
        """Marks the current document; a navigation replaces it with one that has no mark."""
        driver.execute_script("window.__krOldPage = true")

    def wait_for_new_page():
        read(lambda d: d.execute_script("return !window.__krOldPage && document.readyState === 'complete'"))

    def click(locator):
        """Clicks an element on a marked page, trying again if it was not clickable yet; an error that came
        from the click's own navigation counts as done (the mark is gone)."""

        def attempt(d):
            try:
                d.find_element(*locator).click()
                return True
            except WebDriverException:
                try:
                    return d.execute_script("return !window.__krOldPage")
                except WebDriverException:
                    return False

        wait.until(attempt)

    def open_settings():
        driver.get(args.settings_url)
        return status()

    def submit(element_id):
        """Clicks a submit button and waits until the next page fully replaced this one."""
        mark_page()
        click((By.ID, element_id))
        wait_for_new_page()

    def type_into(element_id, text):
        def attempt(d):
            field = d.find_element(By.ID, element_id)
            field.clear()
            field.send_keys(text)
            return field.get_attribute("value") == text

        read(attempt)

    def connect_with_klaviyo(decision):
        submit("connect")
        # klaviyo-sim's consent page: Allow / Deny buttons.
        mark_page()
        click((By.XPATH, f"//button[@value='{decision}']"))
        wait_for_new_page()

    try:
        step("initially not connected", open_settings() == "Not connected", driver.page_source[:300])

        # Deny: clear message, nothing stored.
        connect_with_klaviyo("deny")
        message = text_of("message")
        step("deny shows a clear message", "cancelled" in message and "Nothing was stored" in message, message)
        step("still not connected after deny", open_settings() == "Not connected")

        # Allow: back on return_to, then Connected.
        connect_with_klaviyo("allow")
        wait.until(lambda d: d.current_url.startswith(args.return_to))
        step("allow lands on return_to", driver.current_url.startswith(args.return_to), driver.current_url)
        step("connected after allow", open_settings() == "Connected")
        step("method is OAuth", "OAuth" in text_of("method"))
        if args.expect_synced_events is not None:
            last_sync, events = text_of("last-sync"), text_of("synced-events")
            step("sync status: last sync in relative time, events of the last 24 hours",
                 last_sync.endswith("minutes ago") and events == f"Events: {args.expect_synced_events}",
                 f"{last_sync!r} {events!r}")
            problem, action = text_of("last-error"), text_of("last-error-action")
            step("sync status: the last problem in plain words, Klaviyo's title shown as text",
                 "refused" in problem and "<i>Forbidden</i>" in problem and "scopes" in action
                 and not driver.find_elements(By.CSS_SELECTOR, "#last-error i"),
                 f"{problem!r} {action!r}")

        # Disconnect → Not connected.
        submit("disconnect")
        step("disconnect → not connected", status() == "Not connected")

        # API key, then switch to OAuth and back.
        type_into("api_key", "6chars")
        submit("save-key")
        message = text_of("message")
        step("a public key is refused in plain language", "private" in message, message)
        type_into("api_key", args.api_key)
        submit("save-key")
        step("api key → connected", status() == "Connected")
        step("method is API key", "API key" in text_of("method"))
        connect_with_klaviyo("allow")
        wait.until(lambda d: d.current_url.startswith(args.return_to))
        step("switch to OAuth", open_settings() == "Connected" and "OAuth" in text_of("method"))
        type_into("api_key", args.api_key)
        submit("save-key")
        step("switch back to API key", status() == "Connected" and "API key" in text_of("method"))
        submit("disconnect")
        step("final disconnect", status() == "Not connected")
        print(json.dumps({"ok": True, "steps": steps}))
        return 0
    except Exception as error:  # report everything as JSON for the Swift test
        print(json.dumps({"ok": False, "steps": steps, "error": f"{type(error).__name__}: {error}",
                          "url": driver.current_url, "page": driver.page_source[:2000]}))
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
