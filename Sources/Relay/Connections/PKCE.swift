import Crypto
import Foundation

/// PKCE (RFC 7636) with S256, as Klaviyo requires (Klaviyo's OAuth guide).
public enum PKCE {
    /// A fresh verifier: 32 random bytes, base64url without padding (43 characters).
    public static func makeVerifier() -> String {
        var generator = SystemRandomNumberGenerator()
        return verifier(from: (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// The verifier made from given random bytes (base64url, no padding).
    public static func verifier(from bytes: [UInt8]) -> String {
        base64URL(bytes)
    }

    /// `BASE64URL(SHA256(ASCII(verifier)))`.
    public static func challenge(for verifier: String) -> String {
        base64URL(Array(SHA256.hash(data: Array(verifier.utf8))))
    }

    /// Whether a verifier matches `^[A-Za-z0-9\-._~]{43,128}$`.
    public static func isValidVerifier(_ verifier: String) -> Bool {
        (43...128).contains(verifier.utf8.count)
            && verifier.utf8.allSatisfy { byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "-._~".utf8.contains(byte)
            }
    }

    /// A random opaque value for `state` or lock owners (base64url of 24 random bytes).
    public static func randomToken(bytes count: Int = 24) -> String {
        var generator = SystemRandomNumberGenerator()
        return base64URL((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }
}
