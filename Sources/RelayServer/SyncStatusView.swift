import Relay

/// The settings page's sync status in words a merchant understands: when the last sync worked, what was synced
/// in the last 24 hours, and the last problem with what to do about it. Nothing secret and nothing of Klaviyo's
/// answer beyond its error title (escaped) is shown.
enum SyncStatusView {
    /// Plain words for a failure code, and what the merchant can do.
    struct Problem: Sendable, Hashable {
        var summary: String
        var action: String
        /// Whether the fix is to connect again (the page then points at the connect buttons).
        var needsReconnect: Bool = false
    }

    /// The problem a last-error code stands for.
    static func problem(code: String?) -> Problem {
        switch code ?? "" {
        case "reauth_required", "not_connected":
            return Problem(
                summary: "Klaviyo no longer accepts HeroPixel's connection (the app was removed in Klaviyo, the key "
                    + "was deleted, or the access expired).",
                action: "Reconnect below. Updates that could not be sent meanwhile can be sent again afterwards.",
                needsReconnect: true)
        case "credential_unreadable":
            return Problem(
                summary: "HeroPixel can no longer read the stored Klaviyo connection.",
                action: "Reconnect below; nothing else is lost.", needsReconnect: true)
        case "klaviyo_rejected", "failed":
            return Problem(
                summary: "Klaviyo refused an update from HeroPixel.",
                action: "Check that the Klaviyo API key (or the app's connection) has the permissions (scopes) "
                    + "HeroPixel asks for; connecting again grants them. If it keeps happening, contact support.")
        case "retries_exhausted", "delivery_limit":
            return Problem(
                summary: "Klaviyo was unavailable. HeroPixel retried automatically but had to give up on an update.",
                action: "Nothing to do right now: later updates are sent as usual. If it keeps happening, contact "
                    + "support.")
        case let code where code.contains("limit") || code == "throttled":
            return Problem(
                summary: "Klaviyo's limit for this kind of request was reached (for example 225 reports a day).",
                action: "Wait: HeroPixel holds the request back and sends it when Klaviyo's limit resets.")
        case "schema_invalid", "unknown_type", "unsupported_type", "not_json", "too_large", "unroutable",
            "reply_to_not_allowed", "id_conflict":
            return Problem(
                summary: "HeroPixel produced an update Klaviyo cannot take (a problem on our side).",
                action: "Nothing to do on your side; our team has the details.")
        default:
            return Problem(
                summary: "An update could not be synced to Klaviyo.",
                action: "If it keeps happening, reconnect below or contact support.")
        }
    }

    /// "just now", "3 minutes ago", "2 hours ago", "5 days ago".
    static func relative(_ timestamp: String, nowMilliseconds: Int64) -> String {
        guard let then = Timestamp.parseMilliseconds(timestamp) else { return "at an unknown time" }
        let seconds = max(0, (nowMilliseconds - then) / 1000)
        func plural(_ count: Int64, _ unit: String) -> String { "\(count) \(unit)\(count == 1 ? "" : "s") ago" }
        switch seconds {
        case ..<60: return "just now"
        case ..<3600: return plural(seconds / 60, "minute")
        case ..<86_400: return plural(seconds / 3600, "hour")
        default: return plural(seconds / 86_400, "day")
        }
    }

    /// The HTML section (ids `sync-status`, `last-sync`, `synced-<kind>`, `last-error`, `last-error-action`).
    static func html(_ snapshot: SyncSnapshot, nowMilliseconds: Int64) -> String {
        var html = "<section id=\"sync-status\"><h3>Sync with Klaviyo</h3><dl>"
        let lastSync = snapshot.lastSuccessAt.map { relative($0, nowMilliseconds: nowMilliseconds) } ?? "never"
        let lastSyncTitle = snapshot.lastSuccessAt.map { " title=\"\(HTMLPage.escape($0))\"" } ?? ""
        html += "<dt>Last successful sync</dt><dd id=\"last-sync\"\(lastSyncTitle)>\(HTMLPage.escape(lastSync))</dd>"
        html += "<dt>Synced in the last 24 hours</dt><dd><ul>"
        for kind in SyncKind.allCases {
            let count = snapshot.syncedLast24Hours[kind] ?? 0
            html += "<li id=\"synced-\(kind.rawValue)\">\(kind.rawValue.capitalized): \(count)</li>"
        }
        html += "</ul></dd></dl>"
        if let errorAt = snapshot.lastErrorAt {
            let problem = problem(code: snapshot.lastErrorCode)
            let when = relative(errorAt, nowMilliseconds: nowMilliseconds)
            var resolved = false
            if let success = snapshot.lastSuccessAt.flatMap(Timestamp.parseMilliseconds),
                let failure = Timestamp.parseMilliseconds(errorAt)
            {
                resolved = success > failure
            }
            html += "<h4>Last problem (\(HTMLPage.escape(when)))</h4>"
            html += "<p class=\"\(resolved ? "" : "error")\" id=\"last-error\">\(HTMLPage.escape(problem.summary))"
            if let title = snapshot.lastErrorTitle, !title.isEmpty {
                html += " Klaviyo said: “\(HTMLPage.escape(String(title.prefix(200))))”."
            }
            html += "</p><p id=\"last-error-action\">\(HTMLPage.escape(problem.action))</p>"
            if resolved { html += "<p id=\"last-error-resolved\">Syncing has worked again since then.</p>" }
        }
        return html + "</section>"
    }
}
