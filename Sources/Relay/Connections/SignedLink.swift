import Crypto
import Foundation

/// Browser links signed by the dashboard backend (HMAC-SHA256 with `RELAY_LINK_SECRET`), so nobody can
/// attach their own Klaviyo to someone else's account. The MAC covers exactly the string
/// `"v2\n" + action + "\n" + account_id + "\n" + return_to + "\n" + expires` (action: the path the link opens,
/// ``Action``; expires: Unix seconds), hex-encoded lowercase in `sig`. A link opens only the action it was signed
/// for, expires at most `RELAY_LINK_MAX_TTL` after it is checked, and `return_to` must start with an entry of
/// `RELAY_RETURN_TO_ALLOWLIST` (no open redirect). Version 1 links (no action) are refused.
public struct SignedLink: Sendable, Hashable {
    /// What a link may open. The raw value is the path, and is part of the MAC.
    public enum Action: String, Sendable, Hashable, CaseIterable {
        /// `GET /settings/klaviyo` and the page's own forms (`POST /settings/klaviyo/api-key`, `/disconnect`).
        case settings = "/settings/klaviyo"
        /// `GET /oauth/klaviyo/start`.
        case oauthStart = "/oauth/klaviyo/start"
    }

    /// The action the link was signed for.
    public var action: Action
    /// HeroPixel account id.
    public var accountID: String
    /// Where the browser goes back to.
    public var returnTo: String
    /// Expiry (Unix seconds).
    public var expires: Int64
    /// Hex HMAC-SHA256.
    public var signature: String

    /// The longest lifetime a link may have by default (`RELAY_LINK_MAX_TTL`): one hour.
    public static let defaultMaxLifetime: Duration = .seconds(3600)

    /// Why a link was refused (shown to people; never the secret).
    public struct Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        /// `missing`, `bad_signature`, `expired`, `lifetime_too_long`, `bad_account`, `return_to_not_allowed`,
        /// `not_configured`.
        public var code: String
        /// Plain-language explanation.
        public var description: String
        /// 400 or 403.
        public var status: Int
    }

    /// The exact string that is MACed.
    public static func message(action: Action, accountID: String, returnTo: String, expires: Int64) -> String {
        "v2\n\(action.rawValue)\n\(accountID)\n\(returnTo)\n\(expires)"
    }

    /// Signs a link for one action.
    public static func sign(
        action: Action, accountID: String, returnTo: String, expires: Int64, secret: String
    ) -> SignedLink {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(message(action: action, accountID: accountID, returnTo: returnTo, expires: expires).utf8),
            using: SymmetricKey(data: Data(secret.utf8)))
        let hex = mac.map { String(format: "%02x", $0) }.joined()
        return SignedLink(action: action, accountID: accountID, returnTo: returnTo, expires: expires, signature: hex)
    }

    /// The same account, return URL and expiry signed for another action (the settings page's "Connect with
    /// Klaviyo" button): never a longer lifetime than the link it comes from.
    public func resigned(for action: Action, secret: String) -> SignedLink {
        Self.sign(action: action, accountID: accountID, returnTo: returnTo, expires: expires, secret: secret)
    }

    /// The query string `account_id=…&return_to=…&expires=…&sig=…`.
    public var query: String {
        func encode(_ text: String) -> String {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
        }
        return "account_id=\(encode(accountID))&return_to=\(encode(returnTo))&expires=\(expires)&sig=\(signature)"
    }

    /// The path and query of the link (`/settings/klaviyo?account_id=…`).
    public var pathAndQuery: String { action.rawValue + "?" + query }

    /// Whether `returnTo` starts with an allowlist entry at a URL boundary (an entry without a trailing `/`
    /// does not match `https://app.example.com.evil.test`).
    public static func isAllowed(returnTo: String, allowlist: [String]) -> Bool {
        guard returnTo.hasPrefix("https://") || returnTo.hasPrefix("http://") else { return false }
        return allowlist.contains { entry in
            guard !entry.isEmpty, returnTo.hasPrefix(entry) else { return false }
            if returnTo.count == entry.count || entry.hasSuffix("/") { return true }
            let next = returnTo[returnTo.index(returnTo.startIndex, offsetBy: entry.count)]
            return next == "/" || next == "?" || next == "#"
        }
    }

    /// Verifies a link from its query parameters for one action: signature (constant time), expiry, maximum
    /// lifetime (`expires` at most `maxLifetime` after `now`), account id shape and the `return_to` allowlist.
    public static func verify(
        action: Action, accountID: String?, returnTo: String?, expires: String?, signature: String?, secret: String?,
        allowlist: [String], maxLifetime: Duration = SignedLink.defaultMaxLifetime, now: Int64 = Timestamp.nowSeconds()
    ) throws(Refusal) -> SignedLink {
        guard let secret, !secret.isEmpty else {
            throw Refusal(
                code: "not_configured",
                description: "Signed links are not configured on this server (RELAY_LINK_SECRET).",
                status: 403)
        }
        guard let accountID, !accountID.isEmpty, let returnTo, !returnTo.isEmpty, let expiresText = expires,
            let expiresAt = Int64(expiresText), let signature, !signature.isEmpty
        else {
            throw Refusal(
                code: "missing",
                description: "This link is incomplete. Open Klaviyo settings again from your HeroPixel dashboard.",
                status: 400)
        }
        let expected = sign(
            action: action, accountID: accountID, returnTo: returnTo, expires: expiresAt, secret: secret)
        guard constantTimeEquals(expected.signature, signature.lowercased()) else {
            throw Refusal(
                code: "bad_signature",
                description:
                    "This link is not valid (its signature does not match). Open Klaviyo settings again from your HeroPixel dashboard.",
                status: 403)
        }
        guard expiresAt >= now else {
            throw Refusal(
                code: "expired",
                description:
                    "This link has expired. Go back to your HeroPixel dashboard and open Klaviyo settings again.",
                status: 403)
        }
        guard expiresAt.subtractingReportingOverflow(now).partialValue <= maxLifetime.components.seconds else {
            throw Refusal(
                code: "lifetime_too_long",
                description:
                    "This link is valid for longer than this server allows, so it was refused. Open Klaviyo settings again from your HeroPixel dashboard.",
                status: 403)
        }
        guard accountID.count <= 128,
            accountID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) })
        else {
            throw Refusal(code: "bad_account", description: "This link names an invalid account.", status: 400)
        }
        guard isAllowed(returnTo: returnTo, allowlist: allowlist) else {
            throw Refusal(
                code: "return_to_not_allowed",
                description: "This link would send you to a site that is not allowed, so it was refused.", status: 403)
        }
        return expected
    }
}

/// Compares two strings in time independent of where they differ (length still leaks).
public func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    let left = Array(lhs.utf8)
    let right = Array(rhs.utf8)
    var difference = UInt8(left.count == right.count ? 0 : 1)
    for index in 0..<max(left.count, right.count) {
        let a = index < left.count ? left[index] : 0
        let b = index < right.count ? right[index] : 0
        difference |= a ^ b
    }
    return difference == 0
}
