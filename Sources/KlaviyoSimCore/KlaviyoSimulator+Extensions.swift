import Hummingbird

extension KlaviyoSimulator {
    /// Admin endpoints added by later features (OAuth, settings); `nil` when none matched.
    func handleAdminExtension(method: String, segments: [String], body: JSONValue?) throws(KlaviyoAPIError) -> Response? {
        switch (method, segments) {
        case ("PUT", ["settings"]), ("POST", ["settings"]):
            if let v = body?["latency_ms"]?.intValue { settings.withLock { $0.latency = .milliseconds(v) } }
            if case .bool(let on)? = body?["rate_limits"] { settings.withLock { $0.rateLimitsEnabled = on } }
            return admin(200, settingsJSON)
        case ("GET", ["settings"]):
            return admin(200, settingsJSON)
        default:
            return nil
        }
    }

    var settingsJSON: JSONValue {
        settings.withLock { s in
            [
                "latency_ms": .int(Int(s.latency.components.seconds * 1000 + s.latency.components.attoseconds / 1_000_000_000_000_000)),
                "rate_limits": .bool(s.rateLimitsEnabled),
                "access_token_ttl_seconds": .int(Int(s.accessTokenTTL.components.seconds)),
            ]
        }
    }

    /// Clears state owned by later features on `POST /_sim/reset`.
    func resetExtensions() {}
}
