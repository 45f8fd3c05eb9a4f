import Foundation
import HTTPClient
import Klaviyo
import Redis
import Relay
import Testing

@Suite("OAuth connect (CLI path)", .serialized, .timeLimit(.minutes(3)))
struct OAuthConnectorTests {
    /// Authorize URL with PKCE → the sim's Allow → callback exchange: the connection is stored encrypted as
    /// oauth/connected with the Klaviyo account; the state is single use; a forged state is refused.
    @Test func connectsThroughAuthorizeAndCallback() async throws {
        try await withRelayStack { stack in
            let app = SimOAuthApp(clientID: "app-\(stack.prefix)", clientSecret: "secret-\(UUID().uuidString)")
            try await stack.simAdmin(
                .POST, "/_sim/oauth/apps",
                [
                    "client_id": .string(app.clientID), "client_secret": .string(app.clientSecret),
                    "redirect_uris": [.string(app.redirectURI)],
                    "scopes": .array(OAuthConnector.defaultScopes.split(separator: " ").map { .string(String($0)) }),
                ])
            let klaviyoAccount = "acct-cli-\(UUID().uuidString.lowercased().prefix(10))"
            try await stack.simAdmin(
                .POST, "/_sim/accounts",
                ["account_id": .string(klaviyoAccount), "api_key": "pk_cli_unused_key", "name": "CLI Store"])
            let connector = OAuthConnector(
                oauth: app.client(stack),
                klaviyo: KlaviyoClient(
                    baseURL: IntegrationEnvironment.simURL, transport: stack.http, userAgent: "integration-tests",
                    logger: IntegrationEnvironment.logger),
                store: stack.credentialStore, authorizeURL: IntegrationEnvironment.simURL + "/oauth/authorize",
                redirectURI: app.redirectURI)
            let account = "org-\(stack.prefix)"
            let started = try await connector.start(accountID: account)
            let components = try #require(URLComponents(string: started.url))
            let query = Dictionary(
                uniqueKeysWithValues: (components.queryItems ?? []).map { ($0.name, $0.value ?? "") })
            #expect(query["code_challenge_method"] == "S256")
            #expect(query["state"] == started.state)
            #expect(query["client_id"] == app.clientID)
            #expect(try await stack.redis.exists(RedisKeys.oauthState(started.state)))

            let response = try await stack.http.execute(
                HTTPRequest(method: .GET, url: started.url + "&login_account=\(klaviyoAccount)&decision=allow"))
            #expect(response.status == 302)
            let redirect = try #require(response.headers["Location"])
            let location = try #require(URLComponents(string: redirect))
            let code = try #require(location.queryItems?.first { $0.name == "code" }?.value)

            let record = try await connector.complete(code: code, state: started.state)
            #expect(record.method == .oauth && record.state == .connected)
            #expect(record.klaviyoAccountName == "CLI Store")
            let stored = try #require(try await stack.credentialStore.load(accountID: account))
            #expect(stored.accessToken == record.accessToken && stored.refreshToken == record.refreshToken)
            let raw = try await stack.redis.hashGetAll(RedisKeys.connection(account))
            for secret in [record.accessToken, record.refreshToken].compactMap({ $0 }) {
                #expect(!raw.values.contains { $0.contains(secret) }, "tokens are encrypted at rest")
            }
            #expect(try await !stack.redis.exists(RedisKeys.oauthState(started.state)), "state is single use")
            await #expect {
                _ = try await connector.complete(code: code, state: started.state)
            } throws: { error in
                (error as? OAuthConnector.Failure)?.code == "unknown_state"
            }
            await #expect {
                _ = try await connector.complete(code: code, state: "forged-state")
            } throws: { error in
                (error as? OAuthConnector.Failure)?.code == "unknown_state"
            }
        }
    }
}
