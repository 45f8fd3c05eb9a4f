import HTTPClient
import Klaviyo
import Logging
import RelayTestSupport
import Testing

/// A token call honours its own timeout through the real HTTP client: the token manager bounds it by its lock's
/// lifetime, so a slow answer can never outlive the refresh lock.
@Suite("OAuth token call timeout", .timeLimit(.minutes(1)))
struct OAuthTokenTimeoutTests {
    @Test func aRefreshWithATimeoutFailsWhenItRunsOutNotAtTheClientsDefault() async throws {
        // A peer that completes the handshake (the kernel does) and never answers.
        let listener = try HeldPort()
        defer { listener.release() }
        // The client's own timeout is far beyond the test's time limit: only the call's timeout can end it.
        let http = HTTPClient(
            configuration: HTTPClientConfiguration(requestTimeout: .seconds(600)), logger: Logger(label: "test"))
        defer { Task { await http.shutdown() } }
        let oauth = KlaviyoOAuthClient(
            baseURL: "http://127.0.0.1:\(listener.port)", clientID: "client_1", clientSecret: "secret",
            transport: http, userAgent: "klaviyo-relay/test")
        let error = await #expect(throws: KlaviyoOAuthError.self) {
            _ = try await oauth.refresh(refreshToken: "rt_1", timeout: .milliseconds(300))
        }
        #expect(error?.code == "transport")
        let text = error.map { "\($0)" } ?? ""
        #expect(!text.contains("rt_1"), "no secret in the error: \(text)")
    }
}
