import Hummingbird

extension KlaviyoSimulator {
    /// Admin endpoints for settings and OAuth; `nil` when none matched.
    func handleAdminExtension(method: String, segments: [String], body: JSONValue?) throws(KlaviyoAPIError) -> Response?
    {
        switch (method, segments) {
        case ("PUT", ["settings"]), ("POST", ["settings"]):
            if let v = body?["latency_ms"]?.intValue { settings.withLock { $0.latency = .milliseconds(v) } }
            if case .bool(let on)? = body?["rate_limits"] { settings.withLock { $0.rateLimitsEnabled = on } }
            if let v = body?["access_token_ttl_seconds"]?.intValue {
                settings.withLock { $0.accessTokenTTL = .seconds(v) }
            }
            return admin(200, settingsJSON)
        case ("GET", ["settings"]):
            return admin(200, settingsJSON)
        case ("POST", ["oauth", "apps"]):
            guard let clientId = body?["client_id"]?.stringValue, !clientId.isEmpty else {
                throw .invalid("'client_id' is required.", pointer: "/client_id")
            }
            guard let secret = body?["client_secret"]?.stringValue, !secret.isEmpty else {
                throw .invalid("'client_secret' is required.", pointer: "/client_secret")
            }
            guard let uris = body?["redirect_uris"]?.arrayValue?.compactMap(\.stringValue), !uris.isEmpty else {
                throw .invalid("'redirect_uris' must be a non-empty list.", pointer: "/redirect_uris")
            }
            let scopes = body?["scopes"]?.arrayValue?.compactMap(\.stringValue) ?? SimAccount.allScopes
            let app = OAuthApp(clientId: clientId, clientSecret: secret, redirectURIs: uris, scopes: Set(scopes))
            oauth.withLock { $0.apps[clientId] = app }
            return admin(
                201,
                [
                    "client_id": .string(clientId), "redirect_uris": .array(uris.map { .string($0) }),
                    "scopes": .array(app.scopes.sorted().map { .string($0) }),
                ])
        case ("POST", ["oauth", "login"]):
            let accountId = body?["account_id"]?.stringValue
            if let accountId, registry.box(accountId) == nil {
                throw .invalid("Unknown account '\(accountId)'.", pointer: "/account_id")
            }
            oauth.withLock { $0.loginAccountId = accountId }
            return admin(200, ["account_id": .optional(accountId)])
        case ("PUT", ["oauth", "settings"]), ("POST", ["oauth", "settings"]):
            if let v = body?["access_token_ttl_seconds"]?.intValue {
                settings.withLock { $0.accessTokenTTL = .seconds(v) }
            }
            // With `client_id`, the rotation and latency settings apply to that OAuth app only.
            if let client = body?["client_id"]?.stringValue {
                if case .bool(let rotate)? = body?["rotate_refresh_tokens"] {
                    oauth.withLock { $0.clientSettings[client, default: .init()].rotateRefreshTokens = rotate }
                }
                if let milliseconds = body?["token_latency_ms"]?.intValue {
                    oauth.withLock {
                        $0.clientSettings[client, default: .init()].tokenLatency = .milliseconds(milliseconds)
                    }
                }
                return admin(200, oauthSettingsJSON)
            }
            if case .bool(let rotate)? = body?["rotate_refresh_tokens"] {
                oauth.withLock { $0.rotateRefreshTokens = rotate }
            }
            if let milliseconds = body?["token_latency_ms"]?.intValue {
                oauth.withLock { $0.tokenLatency = .milliseconds(milliseconds) }
            }
            switch body?["advertised_expires_in"] {
            case nil: break
            case .null?: oauth.withLock { $0.advertisedExpiresIn = nil }
            case .int(let number)?: oauth.withLock { $0.advertisedExpiresIn = .int(number) }
            case .double(let number)?: oauth.withLock { $0.advertisedExpiresIn = .double(number) }
            case _?:
                throw .invalid("'advertised_expires_in' must be a number or null.", pointer: "/advertised_expires_in")
            }
            return admin(200, oauthSettingsJSON)
        case ("GET", ["oauth", "settings"]):
            return admin(200, oauthSettingsJSON)
        case ("POST", ["oauth", "expire-access-tokens"]):
            let accountId = body?["account_id"]?.stringValue
            let expired = registry.state.withLock { r in
                var n = 0
                for (token, grant) in r.accessTokens where accountId == nil || grant.accountId == accountId {
                    r.accessTokens[token]?.expiresAt = .now - .seconds(1)
                    n += 1
                }
                return n
            }
            return admin(200, ["expired": .int(expired)])
        case ("GET", let s)
        where s.count == 3 && s[0] == "accounts"
            && ["lists", "events", "side-effects", "subscriptions", "metrics"].contains(s[2]):
            guard let box = registry.box(s[1]) else { return admin(404, ["error": "Unknown account."]) }
            let items: [JSONValue] = box.state.withLock { st in
                let r = st.resources
                switch s[2] {
                case "lists":
                    return r.listOrder.compactMap { r.lists[$0] }.map { l in
                        [
                            "id": .string(l.id), "name": .string(l.name), "opt_in_process": .string(l.optInProcess),
                            "profile_ids": .array(l.members.map { .string($0) }), "count": .int(l.members.count),
                        ]
                    }
                case "events":
                    let metricNames = Dictionary(uniqueKeysWithValues: r.metrics.map { ($0.value, $0.key) })
                    return r.events.map { e in
                        [
                            "id": .string(e.id), "metric": .optional(metricNames[e.metricId]),
                            "profile_id": .string(e.profileId),
                            "properties": e.properties, "time": .string(e.time), "value": e.value ?? .null,
                            "unique_id": .string(e.uniqueId),
                        ]
                    }
                case "metrics":
                    return r.metrics.sorted { $0.key < $1.key }.map { name, id in
                        [
                            "id": .string(id), "name": .string(name),
                            "count": .int(r.events.reduce(0) { $0 + ($1.metricId == id ? 1 : 0) }),
                        ]
                    }
                case "subscriptions":
                    return r.consent.map { id, channels in
                        ["profile_id": .string(id), "channels": .object(channels.mapValues { .string($0) })]
                    }
                default:
                    return r.sideEffects
                }
            }
            return admin(200, [s[2]: .array(items), "count": .int(items.count)])
        case ("POST", let s) where s.count == 3 && s[0] == "accounts" && s[2] == "revoke-app":
            let clientId = body?["client_id"]?.stringValue
            let removed = oauth.withLock { o in
                let ids = o.installs.values.filter {
                    $0.accountId == s[1] && (clientId == nil || $0.clientId == clientId)
                }
                .map(\.id)
                for id in ids { uninstall(id, in: &o) }
                return ids.count
            }
            return admin(200, ["revoked_installs": .int(removed)])
        case (_, let s) where s.count == 3 && s[0] == "accounts" && s[2] == "bulk-import-jobs":
            return try bulkImportAdmin(method: method, accountId: s[1], body: body)
        default:
            return nil
        }
    }

    var settingsJSON: JSONValue {
        settings.withLock { s in
            [
                "latency_ms": .int(Self.milliseconds(s.latency)),
                "rate_limits": .bool(s.rateLimitsEnabled),
                "access_token_ttl_seconds": .int(Int(s.accessTokenTTL.components.seconds)),
            ]
        }
    }

    var oauthSettingsJSON: JSONValue {
        let ttl = settings.withLock { $0.accessTokenTTL }
        let rotate = oauth.withLock { $0.rotateRefreshTokens }
        let latency = oauth.withLock { $0.tokenLatency }
        let advertised = oauth.withLock { $0.advertisedExpiresIn }
        return [
            "access_token_ttl_seconds": .int(Int(ttl.components.seconds)), "rotate_refresh_tokens": .bool(rotate),
            "advertised_expires_in": advertised ?? .null,
            "token_latency_ms": .int(
                Int(latency.components.seconds * 1000 + latency.components.attoseconds / 1_000_000_000_000_000)),
        ]
    }

    static func milliseconds(_ d: Duration) -> Int {
        Int(d.components.seconds) * 1000 + Int(d.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Clears rate-limit counters and OAuth state on `POST /_sim/reset`.
    func resetExtensions() {
        rateLimiter.reset()
        oauth.withLock { $0 = OAuthState() }
        settings.withLock {
            $0 = RuntimeSettings(
                latency: configuration.latency, rateLimitsEnabled: configuration.rateLimitsEnabled,
                accessTokenTTL: configuration.accessTokenTTL)
        }
    }
}
