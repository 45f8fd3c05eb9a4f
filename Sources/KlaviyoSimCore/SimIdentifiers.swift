import Foundation

/// Identifier and timestamp helpers that mimic Klaviyo's formats.
enum SimIdentifiers {
    static let crockford = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    static let alphanumerics = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// A 26-character ULID (10 chars of millisecond time + 16 random), like Klaviyo profile ids.
    static func ulid(now: Date = Date()) -> String {
        var ms = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var out = [UInt8](repeating: 0, count: 26)
        for i in stride(from: 9, through: 0, by: -1) {
            out[i] = crockford[Int(ms & 31)]
            ms >>= 5
        }
        var rng = SystemRandomNumberGenerator()
        var bits = rng.next()
        for i in 10..<26 {
            if i == 22 { bits = rng.next() }
            out[i] = crockford[Int(bits & 31)]
            bits >>= 5
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A short alphanumeric id (6 chars for lists, accounts and public keys).
    static func short(_ length: Int = 6) -> String {
        var rng = SystemRandomNumberGenerator()
        return String(
            decoding: (0..<length).map { _ in alphanumerics[Int(rng.next() % UInt64(alphanumerics.count))] },
            as: UTF8.self)
    }

    /// A random URL-safe token of `bytes` random bytes.
    static func token(bytes: Int = 32) -> String {
        var rng = SystemRandomNumberGenerator()
        let raw = (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return Data(raw).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// ISO 8601 in UTC with an explicit offset, e.g. `2025-10-20T12:00:00+00:00` (Klaviyo's style).
    static func timestamp(_ date: Date = Date()) -> String {
        let secs = Int(date.timeIntervalSince1970.rounded(.down))
        let days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
        let rem = secs - days * 86400
        // Civil-from-days (Howard Hinnant).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))T\(two(rem / 3600)):\(two(rem % 3600 / 60)):\(two(rem % 60))+00:00"
    }
}
