import Hummingbird
import Relay

/// The cookie that binds an OAuth flow to the browser that started it: `kr_oauth=<random nonce>`, HttpOnly,
/// Secure, SameSite=Lax (sent on Klaviyo's top-level redirect back to the callback), scoped to `/oauth/klaviyo`,
/// living as long as the state. The state in Redis keeps only the nonce's SHA-256.
enum OAuthBrowserCookie {
    static let name = "kr_oauth"
    static let attributes = "Path=/oauth/klaviyo; HttpOnly; Secure; SameSite=Lax"

    static func makeNonce() -> String { PKCE.randomToken() }

    static func set(_ nonce: String, lifetime: Duration) -> String {
        "\(name)=\(nonce); Max-Age=\(lifetime.components.seconds); \(attributes)"
    }

    static var clear: String { "\(name)=; Max-Age=0; \(attributes)" }

    /// The nonce the browser sent, if any.
    static func nonce(in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }
}
