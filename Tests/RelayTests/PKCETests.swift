import Relay
import Testing

@Suite("PKCE")
struct PKCETests {
    /// RFC 7636 Appendix B.
    static let rfcOctets: [UInt8] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191, 240,
        91, 88, 5, 88, 83, 132, 141, 121,
    ]

    @Test func rfc7636TestVector() {
        let verifier = PKCE.verifier(from: Self.rfcOctets)
        #expect(verifier == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        #expect(PKCE.challenge(for: verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    @Test func freshVerifiersAreValidAndDistinct() {
        var seen = Set<String>()
        for _ in 0..<200 {
            let verifier = PKCE.makeVerifier()
            #expect(verifier.count == 43)
            #expect(PKCE.isValidVerifier(verifier))
            let challenge = PKCE.challenge(for: verifier)
            #expect(
                challenge.count == 43 && !challenge.contains("=") && !challenge.contains("+")
                    && !challenge.contains("/"))
            seen.insert(verifier)
        }
        #expect(seen.count == 200)
        #expect(!PKCE.isValidVerifier("short"))
        #expect(!PKCE.isValidVerifier(String(repeating: "a", count: 129)))
        #expect(!PKCE.isValidVerifier(String(repeating: "a", count: 42) + "+"))
    }
}
