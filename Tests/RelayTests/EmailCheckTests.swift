import Testing

@testable import Relay

@Suite("Email check")
struct EmailCheckTests {
    static let addresses = [
        "a@b.co", "sarah.mason+x@klaviyo-demo.com", "a@b", "@b.co", "a@", "a@@b.co", "a@b@c.co", "a@.b.co",
        "a@b..co", "a@b.co.", "a b@c.co", "a@b.co ", "\ta@b.co", "a@b.co\r\n", "a\u{0B}@b.co", "..@b.c",
        String(repeating: "x", count: 64) + "@b.co", String(repeating: "x", count: 65) + "@b.co", "", "@", ".",
        "a.b@c.d.e.f",
    ]

    /// The ASCII fast path answers as the Character-based check would, for valid and invalid addresses alike.
    @Test(arguments: addresses)
    func theByteCheckAgreesWithTheCharacterCheck(_ address: String) {
        #expect(Check.isASCIIEmail(address.utf8) == Check.isUnicodeEmail(address))
    }

    @Test func verdicts() {
        #expect(Check.isEmail("sarah.mason+x@klaviyo-demo.com"))
        #expect(!Check.isEmail("a@b"))
        #expect(!Check.isEmail("a@b..co"))
        #expect(!Check.isEmail(String(repeating: "x", count: 65) + "@b.co"))
        #expect(!Check.isEmail("a@" + String(repeating: "b", count: 250) + ".co"), "over 254 bytes")
        // Non-ASCII addresses take the Character path.
        #expect(Check.isEmail("jürgen@bücher.de"))
        #expect(!Check.isEmail("jürgen@bücher\u{3000}.de"), "an ideographic space is whitespace")
        #expect(!Check.isEmail("é@b"))
    }
}
