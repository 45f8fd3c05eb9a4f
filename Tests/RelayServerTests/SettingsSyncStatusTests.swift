import Foundation
import Relay
import RelayTestSupport
import Testing

@testable import RelayServer

/// The settings page's sync status, in-process against real Redis: what was recorded through ``SyncStatus`` is
/// shown in a merchant's words (relative time, counts of the last 24 hours by kind, the last problem with what
/// to do), escaped, and a connection Klaviyo no longer accepts says so.
@Suite("Settings page sync status", .timeLimit(.minutes(2)))
struct SettingsSyncStatusTests {
    /// The text inside the element with `id` (tags stripped), or nil.
    static func text(id: String, in html: String) -> String? {
        guard let start = html.range(of: "id=\"\(id)\"") else { return nil }
        guard let open = html[start.upperBound...].firstIndex(of: ">") else { return nil }
        var depth = 0
        var text = ""
        var index = html.index(after: open)
        while index < html.endIndex {
            if html[index] == "<" {
                let closing = html[index...].hasPrefix("</")
                if closing && depth == 0 { break }
                depth += closing ? -1 : (html[index...].hasPrefix("<br") ? 0 : 1)
                index = html[index...].firstIndex(of: ">").map { html.index(after: $0) } ?? html.endIndex
                continue
            }
            text.append(html[index])
            index = html.index(after: index)
        }
        return text
    }

    @Test func connectedAccountShowsRecentSyncsAndTheLastProblemInPlainWords() async throws {
        try await ServeHarness.run { serve in
            let account = "org-sync-\(serve.prefix)"
            let klaviyoAccount = "acct-sync-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_sync_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.createSimAccount(klaviyoAccount, apiKey: key, name: "Sync Store")
            let connected = try await serve.api(
                .post, "/v1/accounts/\(account)/connection/api-key", token: serve.apiToken,
                body: ["api_key": .string(key)])
            #expect(connected.status == 200)

            let fresh = try await serve.get(serve.link("/settings/klaviyo", account: account))
            #expect(Self.text(id: "last-sync", in: fresh.bodyString) == "never")
            #expect(Self.text(id: "synced-events", in: fresh.bodyString) == "Events: 0")
            #expect(Self.text(id: "last-error", in: fresh.bodyString) == nil)

            let sync = SyncStatus(redis: serve.redis)
            let now = Timestamp.nowMilliseconds()
            let minute: Int64 = 60_000
            // 30 hours ago: outside the last 24 hours.
            try await sync.record(
                accountID: account, succeeded: true, type: "profile.bulk_import", commandID: "c0", detail: "",
                items: 500, nowMilliseconds: now - 30 * 60 * minute)
            // A refusal 2 hours ago, with a hostile Klaviyo title.
            try await sync.record(
                accountID: account, succeeded: false, type: "profile.upsert", commandID: "c1",
                detail: "klaviyo_rejected: profile.upsert c1", klaviyoTitle: "<b>You do not have permission</b>",
                nowMilliseconds: now - 120 * minute)
            try await sync.record(
                accountID: account, succeeded: true, type: "event.bulk_track", commandID: "c2", detail: "", items: 1201,
                nowMilliseconds: now - 90 * minute)
            for index in 0..<2 {
                try await sync.record(
                    accountID: account, succeeded: true, type: "profile.upsert", commandID: "p\(index)", detail: "",
                    nowMilliseconds: now - 10 * minute)
            }
            try await sync.record(
                accountID: account, succeeded: true, type: "list.create", commandID: "l1", detail: "",
                nowMilliseconds: now - 5 * minute)
            // A read is not a sync: no kind is counted, but it is the last success.
            try await sync.record(
                accountID: account, succeeded: true, type: "account.get", commandID: "a1", detail: "",
                nowMilliseconds: now - 3 * minute)

            let page = try await serve.get(serve.link("/settings/klaviyo", account: account))
            #expect(page.status == 200)
            let html = page.bodyString
            #expect(Self.text(id: "status", in: html) == "Connected")
            #expect(Self.text(id: "last-sync", in: html) == "3 minutes ago", "\(html)")
            #expect(Self.text(id: "synced-events", in: html) == "Events: 1201")
            #expect(
                Self.text(id: "synced-profiles", in: html) == "Profiles: 2", "the 500 of 30 hours ago are not counted")
            #expect(Self.text(id: "synced-lists", in: html) == "Lists: 1")
            #expect(Self.text(id: "synced-campaigns", in: html) == "Campaigns: 0")
            let problem = try #require(Self.text(id: "last-error", in: html))
            #expect(problem.contains("Klaviyo refused an update"))
            #expect(problem.contains("&lt;b&gt;You do not have permission&lt;/b&gt;"), "the title, escaped: \(problem)")
            #expect(!html.contains("<b>You do not have permission"))
            #expect(Self.text(id: "last-error-action", in: html)?.contains("scopes") == true)
            #expect(Self.text(id: "last-error-resolved", in: html) != nil, "syncs succeeded after the problem")
            #expect(html.contains("Last problem (2 hours ago)"))
            #expect(!html.contains(key), "the key never appears")
            #expect(!html.contains("klaviyo_rejected"), "no internal codes")
        }
    }

    @Test func aConnectionKlaviyoNoLongerAcceptsSaysReconnect() async throws {
        try await ServeHarness.run { serve in
            let account = "org-reauth-\(serve.prefix)"
            let klaviyoAccount = "acct-reauth-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_reauth_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.createSimAccount(klaviyoAccount, apiKey: key, name: "Reauth Store")
            let connected = try await serve.api(
                .post, "/v1/accounts/\(account)/connection/api-key", token: serve.apiToken,
                body: ["api_key": .string(key)])
            #expect(connected.status == 200)
            try await SyncStatus(redis: serve.redis).record(
                accountID: account, succeeded: false, type: "event.track", commandID: "e1",
                detail: "reauth_required: event.track e1")
            #expect(try await serve.credentialStore.changeState(accountID: account, to: .reauthRequired))

            let page = try await serve.get(serve.link("/settings/klaviyo", account: account))
            let html = page.bodyString
            #expect(Self.text(id: "status", in: html) == "Reconnect needed")
            #expect(Self.text(id: "reconnect-reason", in: html)?.contains("no longer accepts") == true)
            #expect(Self.text(id: "last-error", in: html)?.contains("no longer accepts") == true)
            #expect(Self.text(id: "last-error-action", in: html)?.hasPrefix("Reconnect below") == true)
            #expect(html.contains("id=\"connect\""), "the connect button is offered")
            #expect(!html.contains("id=\"disconnect\""))
        }
    }

    @Test func plainWordsForEveryCode() {
        let cases: [(String?, String)] = [
            ("reauth_required", "no longer accepts"), ("klaviyo_rejected", "refused"), ("failed", "refused"),
            ("retries_exhausted", "unavailable"), ("daily_limit_exceeded", "limit"), ("credential_unreadable", "read"),
            ("schema_invalid", "our side"), (nil, "could not be synced"),
        ]
        for (code, words) in cases {
            #expect(SyncStatusView.problem(code: code).summary.contains(words), "\(code ?? "nil")")
        }
        #expect(SyncStatusView.problem(code: "daily_limit_exceeded").action.hasPrefix("Wait"))
        let now: Int64 = 1_800_000_000_000
        #expect(
            SyncStatusView.relative(Timestamp.format(milliseconds: now - 20_000), nowMilliseconds: now) == "just now")
        #expect(
            SyncStatusView.relative(Timestamp.format(milliseconds: now - 61_000), nowMilliseconds: now)
                == "1 minute ago")
        #expect(
            SyncStatusView.relative(Timestamp.format(milliseconds: now - 3 * 86_400_000), nowMilliseconds: now)
                == "3 days ago")
    }
}
