import Foundation
import HTTPClient
import Klaviyo
import Redis
import Relay
import RelayTestSupport
import Testing

/// `klaviyo-relay connections …` run as the real binary: the CLI connects and disconnects the way `serve` does
/// (``ConnectionLifecycle``: under the account's refresh lock, revoking a replaced or removed OAuth grant at
/// Klaviyo, publishing connection events). It used to store and forget connections directly: a grant it replaced
/// or removed stayed live at Klaviyo, no event was published, and a refresh in flight could rotate the token it
/// read.
@Suite("Connections from the CLI", .serialized, .timeLimit(.minutes(3)))
struct ConnectionsCLITests {
    /// `oauth-url` → klaviyo-sim's Allow → `oauth-callback`: the connection is stored encrypted as oauth/connected
    /// with the Klaviyo account, `connection.connected` is published, the state is single use and a forged state
    /// is refused.
    @Test func oauthCallbackConnectsAndAnnounces() async throws {
        try await withRelayStack { stack in
            let app = try await stack.createOAuthApp()
            let account = "org-\(stack.prefix)"
            let klaviyoAccount = try await createKlaviyoAccount(stack, name: "CLI Store")
            let (events, collector) = try await stack.collectConnectionEvents()
            defer { collector.cancel() }
            let started = try await stack.run(
                [
                    "connections", "oauth-url", "--account", account, "--scope",
                    SimOAuthApp.scopes.joined(separator: " "),
                ],
                variables: oauthVariables(app))
            #expect(started.status == 0, "\(started.stderr)")
            let url = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let (code, state) = try await allow(stack, url: url, klaviyoAccount: klaviyoAccount)
            #expect(try await stack.redis.exists(RedisKeys.oauthState(state)))

            let finished = try await stack.run(
                ["connections", "oauth-callback", "--code=\(code)", "--state=\(state)"], variables: oauthVariables(app))
            #expect(finished.status == 0, "\(finished.stderr)")
            #expect(finished.stdout.contains("connected \(account) to Klaviyo account"), "\(finished.stdout)")
            let stored = try #require(try await stack.credentialStore.load(accountID: account))
            #expect(stored.method == .oauth && stored.state == .connected && stored.klaviyoAccountName == "CLI Store")
            let raw = try await stack.redis.hashGetAll(RedisKeys.connection(account))
            for secret in [stored.accessToken, stored.refreshToken].compactMap({ $0 }) {
                #expect(!raw.values.contains { $0.contains(secret) }, "tokens are encrypted at rest")
            }
            #expect(try await !stack.redis.exists(RedisKeys.oauthState(state)), "state is single use")
            try await waitForEvent(events, "connection.connected", account: account)

            for reused in [state, "forged-state"] {
                let refused = try await stack.run(
                    ["connections", "oauth-callback", "--code=\(code)", "--state=\(reused)"],
                    variables: oauthVariables(app))
                #expect(refused.status != 0)
                #expect(refused.stderr.contains("expired or was already used"), "\(refused.stderr)")
            }
        }
    }

    /// A flow `serve` started belongs to the browser that started it: the CLI refuses to finish it and stores
    /// nothing.
    @Test func aBrowsersFlowIsNotFinishedFromTheCLI() async throws {
        try await withRelayStack { stack in
            let app = try await stack.createOAuthApp()
            let account = "org-\(stack.prefix)"
            let klaviyoAccount = try await createKlaviyoAccount(stack, name: "Browser Store")
            let connector = OAuthConnector(
                oauth: app.client(stack),
                klaviyo: KlaviyoClient(
                    baseURL: IntegrationEnvironment.simURL, transport: stack.http, userAgent: "integration-tests",
                    logger: IntegrationEnvironment.logger),
                store: stack.credentialStore,
                authorizeURL: IntegrationEnvironment.simURL + "/oauth/authorize", redirectURI: app.redirectURI)
            let started = try await connector.start(
                accountID: account, scope: SimOAuthApp.scopes.joined(separator: " "),
                browserBinding: OAuthConnector.browserBinding(for: "nonce-\(stack.prefix)"))
            let (code, state) = try await allow(stack, url: started.url, klaviyoAccount: klaviyoAccount)
            let refused = try await stack.run(
                ["connections", "oauth-callback", "--code=\(code)", "--state=\(state)"], variables: oauthVariables(app))
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("started in a browser"), "\(refused.stderr)")
            #expect(try await stack.credentialStore.load(accountID: account) == nil, "nothing stored")
        }
    }

    /// `add-api-key` over an OAuth connection revokes the replaced grant at Klaviyo (its refresh token is dead
    /// afterwards) and publishes `connection.connected`.
    @Test func addAPIKeyRevokesTheReplacedGrant() async throws {
        try await withRelayStack { stack in
            let app = try await stack.createOAuthApp()
            let record = try await stack.connectOAuth(app)
            let apiKey = try await setAPIKey(stack, klaviyoAccount: record.accountID)
            let (events, collector) = try await stack.collectConnectionEvents()
            defer { collector.cancel() }
            let revokesBefore = try await stack.tokenCalls()["revoke", default: 0]

            let added = try await stack.run(
                ["connections", "add-api-key", "--account", record.accountID, "--api-key", "-"], stdin: apiKey + "\n",
                variables: oauthVariables(app))
            #expect(added.status == 0, "\(added.stderr)")
            let stored = try #require(try await stack.credentialStore.load(accountID: record.accountID))
            #expect(stored.method == .apiKey && stored.apiKey == apiKey && stored.state == .connected)
            #expect(try await stack.tokenCalls()["revoke", default: 0] == revokesBefore + 1)
            try await expectRevoked(stack, app, record)
            try await waitForEvent(events, "connection.connected", account: record.accountID)
        }
    }

    /// A Klaviyo account's name is the customer's text: `add-api-key` and `show` print it with control characters
    /// and bidi overrides escaped, so a name carrying an OSC 52 (clipboard) or CSI sequence cannot drive the
    /// operator's terminal. They used to print it raw.
    @Test func aHostileKlaviyoAccountNameCannotDriveTheTerminal() async throws {
        try await withRelayStack { stack in
            let name = "Evil\u{1b}]52;c;ZWNobyBwd25lZA==\u{07}Store\u{1b}[2J\u{202e}"
            let apiKey = apiKeyName()
            try await stack.simAdmin(
                .POST, "/_sim/accounts",
                [
                    "account_id": .string("acct-cli-\(UUID().uuidString.lowercased().prefix(10))"),
                    "api_key": .string(apiKey), "name": .string(name),
                ])
            let account = "org-\(stack.prefix)"
            let variables = ["RELAY_KLAVIYO_API_BASE_URL": IntegrationEnvironment.simURL]
            let added = try await stack.run(
                ["connections", "add-api-key", "--account", account, "--api-key", "-"], stdin: apiKey + "\n",
                variables: variables)
            #expect(added.status == 0, "\(added.stderr)")
            let stored = try #require(try await stack.credentialStore.load(accountID: account))
            #expect(stored.klaviyoAccountName == name, "stored as Klaviyo said it")
            let shown = try await stack.run(["connections", "show", "--account", account], variables: variables)
            #expect(shown.status == 0, "\(shown.stderr)")
            for output in [added.stdout, shown.stdout] {
                #expect(output.contains("Evil\\u{1b}]52;c;ZWNobyBwd25lZA==\\u{7}Store\\u{1b}[2J\\u{202e}"), "\(output)")
                #expect(!output.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 || $0.value == 0x202e })
            }
        }
    }

    /// `remove` takes the account's refresh lock: while a refresher holds it, the connection stays (the command
    /// fails as busy); once free, the grant is revoked at Klaviyo, the connection is disconnected and
    /// `connection.disconnected` is published.
    @Test func removeRevokesUnderTheAccountLock() async throws {
        try await withRelayStack { stack in
            let app = try await stack.createOAuthApp()
            let record = try await stack.connectOAuth(app)
            let (events, collector) = try await stack.collectConnectionEvents()
            defer { collector.cancel() }
            var variables = oauthVariables(app)
            variables["RELAY_TOKEN_LOCK_TTL"] = "1s"
            let lockKey = RedisKeys.lock(record.accountID)
            _ = try await stack.redis.send(["SET", lockKey, "a-refresher", "PX", "60000"])

            let busy = try await stack.run(
                ["connections", "remove", "--account", record.accountID], variables: variables)
            #expect(busy.status != 0)
            #expect(busy.stderr.contains("busy"), "\(busy.stderr)")
            #expect(try await stack.credentialStore.load(accountID: record.accountID)?.state == .connected)
            #expect(try await stack.redis.send(["GET", lockKey]).string == "a-refresher", "the holder's lock stays")

            _ = try await stack.redis.send(["DEL", lockKey])
            let revokesBefore = try await stack.tokenCalls()["revoke", default: 0]
            let removed = try await stack.run(
                ["connections", "remove", "--account", record.accountID], variables: variables)
            #expect(removed.status == 0, "\(removed.stderr)")
            #expect(removed.stdout.contains("disconnected \(record.accountID)"))
            let stored = try #require(try await stack.credentialStore.load(accountID: record.accountID))
            #expect(stored.state == .disconnected && stored.refreshToken == nil && stored.accessToken == nil)
            #expect(try await stack.tokenCalls()["revoke", default: 0] == revokesBefore + 1)
            try await expectRevoked(stack, app, record)
            try await waitForEvent(events, "connection.disconnected", account: record.accountID)
        }
    }

    // MARK: - Helpers

    /// What the CLI needs to reach klaviyo-sim as this stack's OAuth app.
    func oauthVariables(_ app: SimOAuthApp) -> [String: String] {
        [
            "RELAY_KLAVIYO_API_BASE_URL": IntegrationEnvironment.simURL,
            "RELAY_KLAVIYO_AUTHORIZE_URL": IntegrationEnvironment.simURL + "/oauth/authorize",
            "RELAY_KLAVIYO_CLIENT_ID": app.clientID, "RELAY_KLAVIYO_CLIENT_SECRET": app.clientSecret,
            "RELAY_OAUTH_REDIRECT_URL": app.redirectURI,
        ]
    }

    /// A Klaviyo account in klaviyo-sim (its id).
    func createKlaviyoAccount(_ stack: RelayStack, name: String) async throws -> String {
        let klaviyoAccount = "acct-cli-\(UUID().uuidString.lowercased().prefix(10))"
        try await stack.simAdmin(
            .POST, "/_sim/accounts",
            ["account_id": .string(klaviyoAccount), "api_key": .string(apiKeyName()), "name": .string(name)])
        return klaviyoAccount
    }

    /// Gives a klaviyo-sim account a known private key (its profiles and installs stay) and returns it.
    func setAPIKey(_ stack: RelayStack, klaviyoAccount: String) async throws -> String {
        let key = apiKeyName()
        try await stack.simAdmin(
            .POST, "/_sim/accounts",
            ["account_id": .string(klaviyoAccount), "api_key": .string(key), "name": "OAuth Store"])
        return key
    }

    func apiKeyName() -> String { "pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))" }

    /// Opens an authorize URL in klaviyo-sim as the Klaviyo account's user and clicks Allow: the redirect's code
    /// and state.
    func allow(_ stack: RelayStack, url: String, klaviyoAccount: String) async throws -> (code: String, state: String) {
        let response = try await stack.http.execute(
            HTTPRequest(method: .GET, url: url + "&login_account=\(klaviyoAccount)&decision=allow"))
        #expect(response.status == 302, "authorize → \(response.status) \(response.bodyString)")
        let redirect = try #require(response.headers["Location"])
        let location = try #require(URLComponents(string: redirect))
        let code = try #require(location.queryItems?.first { $0.name == "code" }?.value)
        let state = try #require(location.queryItems?.first { $0.name == "state" }?.value)
        return (code, state)
    }

    /// The connection's refresh token no longer works at Klaviyo.
    func expectRevoked(_ stack: RelayStack, _ app: SimOAuthApp, _ record: ConnectionRecord) async throws {
        let refreshToken = try #require(record.refreshToken)
        await #expect {
            _ = try await app.client(stack).refresh(refreshToken: refreshToken)
        } throws: { error in
            (error as? KlaviyoOAuthError)?.isInvalidGrant == true
        }
    }

    /// Waits for a connection event of `account` with `routingKey`.
    func waitForEvent(_ events: Inbox, _ routingKey: String, account: String) async throws {
        try await eventually("\(routingKey) for \(account)", timeout: .seconds(20)) {
            events.items.withLock { deliveries in
                deliveries.contains { delivery in
                    delivery.routingKey == routingKey
                        && (try? JSONValue.parse(delivery.body))?["account_id"]?.stringValue == account
                }
            }
        }
    }
}
