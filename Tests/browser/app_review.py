#!/usr/bin/env python3
"""Klaviyo's app-review checklist, walked in headless Chromium (selenium) and through the relay.

Run by scripts/dev/demo/app-review.sh (also reachable as scripts/demo/app-review.sh), which brings up
klaviyo-sim, `klaviyo-relay serve` and a consumer on their own ports and passes:
  --serve URL            serve's public base URL
  --sim URL              klaviyo-sim's base URL
  --account ID           the HeroPixel account used for the walk (fresh, never connected)
  --klaviyo-account ID   the Klaviyo (sim) account the reviewer is logged into
  --client-id ID         the OAuth app's client_id in klaviyo-sim
  --return-to URL        return_to of the signed links (allowlisted in serve)
  --relay PATH           the klaviyo-relay binary (sign-link, publish); its environment is this process's
  --screenshots DIR      a PNG per page passed (default var/app-review/); --no-screenshots keeps none
Prints the checklist with PASS / FAIL / N/A per item and exits 1 if any item failed. Waits are bounded waits
on conditions (WebDriverWait, polling with a deadline), never blind sleeps.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timezone

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# Klaviyo's technical review checklist (integration doc, "Integrating with Klaviyo"), in order.
CHECKLIST = [
    ("install", "Install URL directs user as expected"),
    ("logged-in", "Works while logged into Partner App"),
    ("logged-out", "Works while not logged into Partner App"),
    ("seamless", "Installation via Partner App is seamless"),
    ("uninstall", "Uninstalling via Partner App successfully removes app in Klaviyo"),
    ("removed-in-klaviyo", "Removing integration via Klaviyo successfully updates Partner App"),
    ("settings-url", "Settings URL directs to an Integration/Settings page"),
    ("deny", "Deny permission workflow uses clear language"),
    ("metrics", "Metrics are supplied and updated as applicable"),
    ("performs", "App performs as expected and described (sync status, campaign/flow performance)"),
]
NOT_THE_RELAYS = {
    "logged-in": "HeroPixel's own login: the relay's links are signed per account and work either way",
    "logged-out": "HeroPixel's own login: the relay's links are signed per account and work either way",
}


class Walk:
    def __init__(self, args):
        self.args = args
        self.verdicts = {}
        self.notes = {}
        self.shots = 0
        self.screenshot_dir = None if args.no_screenshots else pathlib.Path(args.screenshots)
        if self.screenshot_dir:
            self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,1100"):
            options.add_argument(flag)
        options.binary_location = args.chromium
        self.driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
        self.wait = WebDriverWait(self.driver, 20)

    # -- verdicts --------------------------------------------------------------------------------------------

    def check(self, item, condition, detail):
        """Records one check of a checklist item; an item passes only if every check of it passed."""
        ok = bool(condition)
        self.verdicts[item] = self.verdicts.get(item, True) and ok
        self.notes.setdefault(item, []).append(("ok " if ok else "FAILED ") + detail)
        return ok

    # -- browser ---------------------------------------------------------------------------------------------

    def read(self, fn):
        def attempt(d):
            try:
                return fn(d) or False
            except WebDriverException:
                return False
        return self.wait.until(attempt)

    def text_of(self, element_id):
        return self.read(lambda d: d.find_element(By.ID, element_id).text.strip())

    def maybe_text(self, element_id):
        found = self.driver.find_elements(By.ID, element_id)
        return found[0].text.strip() if found else None

    def screenshot(self, name):
        self.shots += 1
        if self.screenshot_dir:
            self.driver.save_screenshot(str(self.screenshot_dir / f"{self.shots:02d}-{name}.png"))

    def mark_page(self):
        self.driver.execute_script("window.__krOldPage = true")

    def wait_for_new_page(self):
        self.read(lambda d: d.execute_script("return !window.__krOldPage && document.readyState === 'complete'"))

    def click(self, locator):
        def attempt(d):
            try:
                d.find_element(*locator).click()
                return True
            except WebDriverException:
                try:
                    return d.execute_script("return !window.__krOldPage")
                except WebDriverException:
                    return False
        self.mark_page()
        self.wait.until(attempt)
        self.wait_for_new_page()

    def open_settings(self, name):
        self.driver.get(self.sign_link("/settings/klaviyo"))
        status = self.text_of("status")
        self.screenshot(name)
        return status

    # -- relay and sim ---------------------------------------------------------------------------------------

    def sign_link(self, path):
        return subprocess.run(
            [self.args.relay, "sign-link", "--account", self.args.account, "--return-to", self.args.return_to,
             "--ttl", "15m", "--path", path, "--base-url", self.args.serve],
            check=True, capture_output=True, text=True).stdout.strip()

    def sim(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.args.sim + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def revokes(self):
        stats = self.sim("GET", "/_sim/stats")
        return (stats.get("token_calls_by_client") or {}).get(self.args.client_id, {}).get("revoke", 0)

    def publish(self, type_, payload):
        """Publishes one command through RabbitMQ and returns its result or dead letter (a JSON object)."""
        command_id = f"review-{uuid.uuid4().hex[:12]}"
        body = {"id": command_id, "type": type_, "account_id": self.args.account,
                "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "payload": payload}
        done = subprocess.run(
            [self.args.relay, "publish", "--dev", "--log-level", "warning", "--wait", "--timeout", "60s"],
            input=json.dumps(body) + "\n", capture_output=True, text=True)
        for line in done.stdout.splitlines():
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if document.get("command_id") == command_id:
                return document
        return {"command_id": command_id, "missing": True, "stderr": done.stderr[-500:]}

    def eventually(self, condition, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(0.2)

    # -- the walk --------------------------------------------------------------------------------------------

    def connect(self, decision):
        """Settings page → Connect with Klaviyo → klaviyo-sim's consent page → Allow / Deny."""
        self.click((By.ID, "connect"))
        consent_url = self.driver.current_url
        on_consent = consent_url.startswith(self.args.sim + "/oauth/authorize")
        self.screenshot(f"klaviyo-consent-before-{decision}")
        self.click((By.XPATH, f"//button[@value='{decision}']"))
        return on_consent, consent_url

    def run(self):
        args = self.args
        # Settings URL: a signed link opens the Klaviyo settings page.
        status = self.open_settings("settings-not-connected")
        self.check("settings-url", self.driver.title == "Klaviyo settings" and status == "Not connected",
                   f"signed settings link → '{self.driver.title}' page, status '{status}'")
        self.check("settings-url", self.driver.find_elements(By.ID, "connect"),
                   "the page offers 'Connect with Klaviyo' and the API-key form")

        # Deny: Klaviyo's consent page, Deny → a clear message, nothing stored.
        on_consent, url = self.connect("deny")
        self.check("deny", on_consent, f"Connect goes to Klaviyo's consent page ({url.split('?')[0]})")
        message = self.text_of("message")
        self.screenshot("denied")
        self.check("deny", "cancelled" in message and "Nothing was stored" in message, f"message: {message!r}")
        self.check("deny", self.open_settings("settings-after-deny") == "Not connected", "still not connected")

        # Install: Allow → back in HeroPixel → connected with OAuth.
        on_consent, url = self.connect("allow")
        self.check("install", on_consent, "the install link leads to Klaviyo's consent page")
        landed = self.read(lambda d: d.current_url.startswith(args.return_to) and d.current_url)
        self.screenshot("returned-to-heropixel")
        self.check("install", landed, f"Allow returns to HeroPixel ({landed})")
        status = self.open_settings("settings-connected")
        method = self.maybe_text("method") or ""
        account = self.maybe_text("klaviyo-account") or ""
        self.check("install", status == "Connected" and "OAuth" in method,
                   f"settings: {status}, {method}, {account}")
        self.check("seamless", status == "Connected",
                   "one click on Connect, one on Allow, back in HeroPixel connected (no codes or keys to copy)")

        # Metrics: an event through the relay reaches Klaviyo as a metric.
        metric = f"App Review Order {uuid.uuid4().hex[:6]}"
        outcome = self.publish("event.track", {"metric": metric, "profile": {"email": "review@example.com"},
                                               "value": 25.0, "properties": {"order_id": "R-1"}})
        self.check("metrics", outcome.get("outcome") == "succeeded", f"event.track → {summary(outcome)}")
        metrics = self.eventually(lambda: [
            m for m in self.sim("GET", f"/_sim/accounts/{args.klaviyo_account}/metrics")["metrics"]
            if m["name"] == metric and m["count"] >= 1])
        self.check("metrics", metrics, f"Klaviyo has the metric '{metric}' with its event ({metrics})")

        # Performs: sync status on the settings page; campaign / flow performance through the relay.
        # Each consumer writes sync status in batches (every 250 ms), so the page shows the event moments after
        # its result: reload the page the way a user would until it does, within the deadline.
        def sync_status():
            self.open_settings("settings-sync-status")
            shown = (self.maybe_text("last-sync"), self.maybe_text("synced-events"))
            return shown if shown[0] and shown[0] != "never" and shown[1] == "Events: 1" else None
        last_sync, events = self.eventually(sync_status, timeout=10.0) or (
            self.maybe_text("last-sync"), self.maybe_text("synced-events"))
        self.check("performs", last_sync and last_sync != "never" and events == "Events: 1",
                   f"settings page sync status: last sync {last_sync!r}, {events!r}")
        flows = self.publish("flow.list", {})
        flow_id = ((flows.get("klaviyo") or {}).get("ids") or [None])[0]
        live = self.publish("flow.update_status", {"flow_id": flow_id or "none", "status": "live"})
        report = self.publish("flow.report", {
            "statistics": ["recipients", "open_rate", "conversions", "conversion_value"],
            "timeframe": {"key": "last_30_days"},
            "conversion_metric_id": metrics[0]["id"] if metrics else "none"})
        rows = ((report.get("klaviyo") or {}).get("data") or {}).get("results") or []
        self.check("performs", live.get("outcome") == "succeeded" and report.get("outcome") == "succeeded" and rows
                   and rows[0]["groupings"].get("flow_id") == flow_id and rows[0]["statistics"].get("conversions") == 1,
                   f"flow.report for the live flow → {summary(report)}: {rows[:1]}")

        # Uninstall in HeroPixel: Disconnect → the grant is revoked at Klaviyo.
        before = self.revokes()
        self.open_settings("settings-before-disconnect")
        self.click((By.ID, "disconnect"))
        status = self.text_of("status")
        self.screenshot("disconnected")
        self.check("uninstall", status == "Not connected", f"after Disconnect: {status}")
        after = self.eventually(lambda: self.revokes() > before and self.revokes())
        self.check("uninstall", after, f"klaviyo-sim recorded the revoke of the app's grant ({before} → {after})")

        # Removed in Klaviyo: connect again, the user removes the app in Klaviyo, HeroPixel shows it and stops.
        self.open_settings("settings-reconnect")
        self.connect("allow")
        self.read(lambda d: d.current_url.startswith(args.return_to))
        self.check("removed-in-klaviyo", self.open_settings("settings-connected-again") == "Connected",
                   "connected again")
        removed = self.sim("POST", f"/_sim/accounts/{args.klaviyo_account}/revoke-app", {"client_id": args.client_id})
        self.check("removed-in-klaviyo", removed.get("revoked_installs") == 1,
                   f"app removed in Klaviyo ({removed})")
        first = self.publish("event.track", {"metric": metric, "profile": {"email": "review@example.com"}})
        code = (first.get("dead_letter") or {}).get("code")
        self.check("removed-in-klaviyo", code == "reauth_required", f"the next command → {summary(first)}")
        status = self.open_settings("settings-reconnect-needed")
        reason = self.maybe_text("reconnect-reason") or ""
        self.check("removed-in-klaviyo", status == "Reconnect needed" and "no longer accepts" in reason,
                   f"settings: {status}: {reason[:80]!r}")
        second = self.publish("account.get", {})
        self.check("removed-in-klaviyo", (second.get("dead_letter") or {}).get("code") == "reauth_required",
                   f"commands stay stopped until reconnecting: {summary(second)}")

        for item, reason in NOT_THE_RELAYS.items():
            self.verdicts[item] = None
            self.notes[item] = [reason]

    def report(self):
        print("Klaviyo app review checklist (walked by scripts/demo/app-review.sh)")
        failed = 0
        for item, title in CHECKLIST:
            verdict = self.verdicts.get(item, False)
            label = "N/A " if verdict is None else ("PASS" if verdict else "FAIL")
            failed += verdict is False
            print(f"  [{label}] {title}")
            for note in self.notes.get(item, ["not reached"]):
                print(f"           {note}")
        where = f"{self.shots} screenshots in {self.screenshot_dir}" if self.screenshot_dir else "no screenshots kept"
        print(f"{len(CHECKLIST) - failed - len(NOT_THE_RELAYS)} passed, {failed} failed, "
              f"{len(NOT_THE_RELAYS)} not the relay's; {where}")
        return 1 if failed else 0


def summary(outcome):
    if "dead_letter" in outcome:
        letter = outcome["dead_letter"]
        code = letter.get("code")
        return f"dead letter {code}" if code == "reauth_required" else f"dead letter {code}: {letter.get('detail')}"
    if outcome.get("missing"):
        return f"no outcome ({outcome.get('stderr', '').strip()[:200]})"
    return f"{outcome.get('outcome')} (HTTP {(outcome.get('klaviyo') or {}).get('status')})"


def main():
    parser = argparse.ArgumentParser()
    for name in ("--serve", "--sim", "--account", "--klaviyo-account", "--client-id", "--return-to", "--relay"):
        parser.add_argument(name, required=True)
    parser.add_argument("--screenshots", default=os.path.join("var", "app-review"))
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()
    walk = Walk(args)
    try:
        walk.run()
    except Exception as error:  # the checklist is printed whatever happened; what was not reached fails
        page = ""
        try:
            page = walk.driver.current_url
            walk.screenshot("error")
        except WebDriverException:
            pass
        print(f"walk stopped: {type(error).__name__}: {error} (at {page})", file=sys.stderr)
    finally:
        walk.driver.quit()
    return walk.report()


if __name__ == "__main__":
    sys.exit(main())
