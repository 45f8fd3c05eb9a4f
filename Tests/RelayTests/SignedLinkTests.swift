import Relay
import Testing

@Suite("Signed browser links")
struct SignedLinkTests {
    let secret = "s3cret"
    let allowlist = ["https://app.heropixel.test/", "http://127.0.0.1:8080/healthz"]

    @Test func roundTripAndKnownVector() throws {
        let link = SignedLink.sign(
            accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: 2_000_000_000, secret: secret)
        // python3 -c 'import hmac;print(hmac.new(b"s3cret",b"v1\norg_42\nhttps://app.heropixel.test/x\n2000000000","sha256").hexdigest())'
        #expect(link.signature == "11e000dab79f08efb1526c9525ddaabbed6ca494cc5802f8df1b9cad04ee2ca0")
        let verified = try SignedLink.verify(
            accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: "2000000000",
            signature: link.signature.uppercased(), secret: secret, allowlist: allowlist, now: 1_999_999_999)
        #expect(verified == link)
    }

    @Test func refusals() {
        let link = SignedLink.sign(
            accountID: "org_42", returnTo: "https://app.heropixel.test/x", expires: 100, secret: secret)
        func code(
            account: String? = "org_42", returnTo: String? = "https://app.heropixel.test/x", expires: String? = "100",
            signature: String? = nil, secret: String? = "s3cret", now: Int64 = 50
        ) -> String? {
            do {
                _ = try SignedLink.verify(
                    accountID: account, returnTo: returnTo, expires: expires, signature: signature ?? link.signature,
                    secret: secret, allowlist: allowlist, now: now)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code() == nil)
        #expect(code(now: 101) == "expired")
        #expect(code(account: "org_43") == "bad_signature")
        #expect(code(expires: "101") == "bad_signature")
        #expect(code(signature: String(repeating: "0", count: 64)) == "bad_signature")
        #expect(code(secret: nil) == "not_configured")
        #expect(code(expires: nil) == "missing")
        let evil = SignedLink.sign(accountID: "org_42", returnTo: "https://evil.test/", expires: 100, secret: secret)
        #expect(code(returnTo: "https://evil.test/", signature: evil.signature) == "return_to_not_allowed")
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
