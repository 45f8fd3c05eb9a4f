#!/usr/bin/env python3
"""Browser test of `klaviyo-relay serve`'s settings page in headless Chromium (selenium).

Run by Tests/IntegrationTests/ServeTests.swift, which starts `serve` and klaviyo-sim and passes:
  --settings-url URL   a signed /settings/klaviyo link for a fresh account
  --return-to URL      the return_to inside that link
  --api-key KEY        a valid private key of the same Klaviyo account in the sim
Prints one JSON object {"ok": bool, "steps": [...], "error": "..."} and exits 0 only if every step passed.
Waits are bounded waits on page conditions (WebDriverWait), never blind sleeps.
"""
import argparse
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
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
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = args.chromium
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    wait = WebDriverWait(driver, 20)

    def status():
        """The page's status heading, read again if the page was replaced while reading (no stale reads)."""

        def read(d):
            try:
                return d.find_element(By.ID, "status").text.strip() or False
            except Exception:  # not there yet, or replaced by a navigation under our feet
                return False

        return wait.until(read)

    def click(locator):
        """Clicks an element, finding it again if a navigation replaced it between lookup and click."""

        def attempt(d):
            page = d.find_element(By.TAG_NAME, "html")
            try:
                d.find_element(*locator).click()
                return True
            except Exception:
                # If the page changed anyway, the click went through (the error came from the navigation).
                try:
                    return EC.staleness_of(page)(d)
                except Exception:
                    return False

        wait.until(attempt)

    def open_settings():
        driver.get(args.settings_url)
        return status()

    def submit(element_id):
        """Clicks a submit button and waits until the next page replaced this one (no stale reads)."""
        old_page = driver.find_element(By.TAG_NAME, "html")
        click((By.ID, element_id))
        wait.until(EC.staleness_of(old_page))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def connect_with_klaviyo(decision):
        old_page = driver.find_element(By.TAG_NAME, "html")
        click((By.ID, "connect"))
        wait.until(EC.staleness_of(old_page))
        # klaviyo-sim's consent page: Allow / Deny buttons.
        click((By.XPATH, f"//button[@value='{decision}']"))

    try:
        step("initially not connected", open_settings() == "Not connected", driver.page_source[:300])

        # Deny: clear message, nothing stored.
        connect_with_klaviyo("deny")
        message = wait.until(EC.presence_of_element_located((By.ID, "message"))).text
        step("deny shows a clear message", "cancelled" in message and "Nothing was stored" in message, message)
        step("still not connected after deny", open_settings() == "Not connected")

        # Allow: back on return_to, then Connected.
        connect_with_klaviyo("allow")
        wait.until(lambda d: d.current_url.startswith(args.return_to))
        step("allow lands on return_to", driver.current_url.startswith(args.return_to), driver.current_url)
        step("connected after allow", open_settings() == "Connected")
        step("method is OAuth", "OAuth" in driver.find_element(By.ID, "method").text)

        # Disconnect → Not connected.
        submit("disconnect")
        step("disconnect → not connected", status() == "Not connected")

        # API key, then switch to OAuth and back.
        driver.find_element(By.ID, "api_key").send_keys("6chars")
        submit("save-key")
        message = wait.until(EC.presence_of_element_located((By.ID, "message"))).text
        step("a public key is refused in plain language", "private" in message, message)
        field = driver.find_element(By.ID, "api_key")
        field.clear()
        field.send_keys(args.api_key)
        submit("save-key")
        step("api key → connected", status() == "Connected")
        step("method is API key", "API key" in driver.find_element(By.ID, "method").text)
        connect_with_klaviyo("allow")
        wait.until(lambda d: d.current_url.startswith(args.return_to))
        step("switch to OAuth", open_settings() == "Connected" and "OAuth" in driver.find_element(By.ID, "method").text)
        field = driver.find_element(By.ID, "api_key")
        field.send_keys(args.api_key)
        submit("save-key")
        step("switch back to API key", status() == "Connected" and "API key" in driver.find_element(By.ID, "method").text)
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
