import Relay
import Testing

@Suite("Signed browser links")
struct SignedLinkTests {
    let secret = "s3cret"
    let allowlist = ["https://app.heropixel.test/", "http://127.0.0.1:8080/healthz"]

    @Test func roundTripAndKnownVector() throws {
        let link = SignedLink.sign(
            action: .settings, accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: 2_000_000_000,
            secret: secret)
        // python3 -c 'import hmac;print(hmac.new(b"s3cret",
        //   b"v2\n/settings/klaviyo\norg_42\nhttps://app.heropixel.test/x\n2000000000","sha256").hexdigest())'
        #expect(link.signature == "9c11beae55b187fc02c6a897d7d70bc68377dedd00cfb0fb453ce25ac142ece0")
        let verified = try SignedLink.verify(
            action: .settings, accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: "2000000000",
            signature: link.signature.uppercased(), secret: secret, allowlist: allowlist, now: 1_999_999_999)
        #expect(verified == link)
        #expect(link.pathAndQuery.hasPrefix("/settings/klaviyo?account_id=org_42&"))
    }

    /// Verifies a link's fields for an action; returns the refusal code, or nil when accepted.
    func code(
        _ link: SignedLink, action: SignedLink.Action? = nil, account: String? = nil, expires: String? = nil,
        signature: String? = nil, secret: String? = "s3cret", maxLifetime: Duration = .seconds(3600), now: Int64 = 50
    ) -> String? {
        do {
            _ = try SignedLink.verify(
                action: action ?? link.action, accountID: account ?? link.accountID, returnTo: link.returnTo,
                expires: expires ?? String(link.expires), signature: signature ?? link.signature, secret: secret,
                allowlist: allowlist, maxLifetime: maxLifetime, now: now)
            return nil
        } catch {
            return error.code
        }
    }

    @Test func refusals() {
        let link = SignedLink.sign(
            action: .settings, accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: 100,
            secret: secret)
        #expect(code(link) == nil)
        #expect(code(link, now: 101) == "expired")
        #expect(code(link, account: "org_43") == "bad_signature")
        #expect(code(link, expires: "101") == "bad_signature")
        #expect(code(link, signature: String(repeating: "0", count: 64)) == "bad_signature")
        #expect(code(link, secret: nil) == "not_configured")
        do {
            _ = try SignedLink.verify(
                action: .settings, accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: nil,
                signature: link.signature, secret: secret, allowlist: allowlist, now: 50)
            Issue.record("a link without expires was accepted")
        } catch {
            #expect(error.code == "missing")
        }
        let evil = SignedLink.sign(
            action: .settings, accountID: "org_42", returnTo: "https://evil.test/", expires: 100, secret: secret)
        do {
            _ = try SignedLink.verify(
                action: .settings, accountID: "org_42", returnTo: "https://evil.test/", expires: "100",
                signature: evil.signature, secret: secret, allowlist: allowlist, now: 50)
            Issue.record("an unlisted return_to was accepted")
        } catch {
            #expect(error.code == "return_to_not_allowed")
        }
    }

    /// A link opens only the action it was signed for: a settings link cannot start OAuth and back.
    @Test func theMACCoversTheAction() {
        let settings = SignedLink.sign(
            action: .settings, accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: 100,
            secret: secret)
        let start = SignedLink.sign(
            action: .oauthStart, accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: 100,
            secret: secret)
        #expect(settings.signature != start.signature)
        #expect(code(settings, action: .oauthStart) == "bad_signature")
        #expect(code(start, action: .settings) == "bad_signature")
        #expect(code(start) == nil)
        let resigned = settings.resigned(for: .oauthStart, secret: secret)
        #expect(resigned == start, "re-signing keeps account, return_to and expiry")
    }

    /// A version 1 link (MAC without the action) is refused.
    @Test func versionOneLinksAreRefused() throws {
        // The old v1 MAC of the same fields (see the known vector before the action was signed).
        let v1 = "11e000dab79f08efb1526c9525ddaabbed6ca494cc5802f8df1b9cad04ee2ca0"
        let link = SignedLink.sign(
            action: .settings, accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: 2_000_000_000,
            secret: secret)
        for action in SignedLink.Action.allCases {
            #expect(code(link, action: action, signature: v1, now: 1_999_999_999) == "bad_signature")
        }
    }

    /// `expires` may be at most the maximum lifetime ahead of now.
    @Test func lifetimeIsBounded() {
        let now: Int64 = 1_000_000
        let inAnHour = SignedLink.sign(
            action: .oauthStart, accountID: "org_42", returnTo: "https://app.heropixel.test/", expires: now + 3600,
            secret: secret)
        let tooLong = SignedLink.sign(
            action: .oauthStart, accountID: "org_42", returnTo: "https://app.heropixel.test/", expires: now + 3601,
            secret: secret)
        let forever = SignedLink.sign(
            action: .oauthStart, accountID: "org_42", returnTo: "https://app.heropixel.test/", expires: .max,
            secret: secret)
        #expect(code(inAnHour, now: now) == nil)
        #expect(code(tooLong, now: now) == "lifetime_too_long")
        #expect(code(forever, now: now) == "lifetime_too_long")
        #expect(code(tooLong, maxLifetime: .seconds(7200), now: now) == nil)
        #expect(code(inAnHour, maxLifetime: .seconds(600), now: now) == "lifetime_too_long")
    }

    @Test func allowlistMatchesAtURLBoundaries() {
        #expect(SignedLink.isAllowed(returnTo: "https://app.heropixel.test/settings?x=1", allowlist: allowlist))
        #expect(SignedLink.isAllowed(returnTo: "http://127.0.0.1:8080/healthz", allowlist: allowlist))
        #expect(SignedLink.isAllowed(returnTo: "http://127.0.0.1:8080/healthz?ok=1", allowlist: allowlist))
        #expect(!SignedLink.isAllowed(returnTo: "http://127.0.0.1:8080/healthzz", allowlist: allowlist))
        #expect(
            !SignedLink.isAllowed(
                returnTo: "https://app.heropixel.test.evil/", allowlist: ["https://app.heropixel.test"]))
        #expect(!SignedLink.isAllowed(returnTo: "javascript:alert(1)", allowlist: ["javascript:"]))
        #expect(!SignedLink.isAllowed(returnTo: "https://other.test/", allowlist: []))
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEquals("abc", "abc"))
        #expect(!constantTimeEquals("abc", "abd"))
        #expect(!constantTimeEquals("abc", "abcd"))
        #expect(!constantTimeEquals("", "a"))
    }
}
