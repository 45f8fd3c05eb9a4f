public import AMQP
import Crypto
import Foundation

/// An HMAC over the relay's own bookkeeping headers, so that only messages the relay itself parked in a retry
/// tier steer the retry budget and route.
///
/// A publisher can put any header on a fresh command, including `x-relay-attempts: 99` (no retries left),
/// `x-relay-first-failed-at: 2000-01-01T00:00:00Z` (too old to retry) or `x-original-routing-key` (another retry
/// route). The relay seals the headers it writes when it parks a command (`x-relay-seal`: HMAC-SHA256 over the
/// body's digest and those headers, with a key derived from `RELAY_ENCRYPTION_KEY`); on a delivery whose seal
/// does not verify, those headers are ignored and the command is treated as fresh. Every key of the ring
/// verifies (keys rotate); the first signs.
///
/// Dead letters carry a seal of their own kind (``sealDeadLetter(_:body:)``, in `HeaderSeal+DeadLetter.swift`): a
/// retry's seal never verifies as a dead letter's, nor a dead letter's as a retry's.
public struct HeaderSeal: Sendable {
    /// The header that carries the seal (hex).
    public static let header = "x-relay-seal"

    /// The headers covered, in the order they are MACed.
    public static let sealedHeaders = [
        DeadLetter.Header.attempts, DeadLetter.Header.firstFailedAt, DeadLetter.Header.originalRoutingKey,
        DeadLetter.Header.originalExchange, DelayedRetry.Header.jobPolls, DelayedRetry.Header.lastError,
    ]

    /// Headers covered only when present (added after v1 seals existed: a message sealed without them, by an
    /// older relay, still verifies).
    public static let optionalSealedHeaders = [
        DelayedRetry.Header.slot, DeliveryBundle.header, DeliveryBundle.redeliveredHeader,
    ]

    /// Every header the relay owns: read only from sealed messages, stripped from unsealed ones.
    public static func isRelayHeader(_ name: String) -> Bool {
        name == header || name.hasPrefix("x-relay-") || name.hasPrefix("x-original-")
    }

    let keys: [SymmetricKey]

    /// Derives the sealing keys from the encryption key ring (HKDF-SHA256, a purpose of its own, so the MAC key is
    /// never the key that encrypts secrets).
    public init(keyRing: EncryptionKeyRing) {
        keys = keyRing.keyIDs.compactMap { keyRing.keys[$0] }.map { key in
            HKDF<SHA256>.deriveKey(
                inputKeyMaterial: key, info: Data("klaviyo-relay header seal v1".utf8), outputByteCount: 32)
        }
    }

    /// The bytes MACed: version, the body's SHA-256, then each sealed header as `name=value` (absent: `name-`).
    static func message(headers: AMQPTable, body: [UInt8]) -> Data {
        var text = "v1\n" + SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined() + "\n"
        let present = optionalSealedHeaders.filter { headers[$0] != nil }
        for name in sealedHeaders + present {
            switch headers[name] {
            case .string(let value)?: text += "\(name)=s:\(value)\n"
            case .bytes(let value)?: text += "\(name)=s:\(String(decoding: value, as: UTF8.self))\n"
            case .int(let value)?: text += "\(name)=i:\(value)\n"
            case nil: text += "\(name)-\n"
            case let other?: text += "\(name)=?:\(other)\n"
            }
        }
        return Data(text.utf8)
    }

    /// Adds (or replaces) the seal of `headers` for `body`.
    public func seal(_ headers: inout AMQPTable, body: [UInt8]) {
        headers[Self.header] = nil
        headers[Self.header] = code(for: Self.message(headers: headers, body: body)).map { .string($0) }
    }

    /// Whether the relay sealed these headers for this body (constant-time comparison, any key of the ring).
    public func verify(_ headers: AMQPTable, body: [UInt8]) -> Bool {
        verifies(headers[Self.header]) { Self.message(headers: headers, body: body) }
    }

    /// The seal of `message` with the first key (hex), or nil with no key.
    func code(for message: Data) -> String? {
        guard let key = keys.first else { return nil }
        return HMAC<SHA256>.authenticationCode(for: message, using: key).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `presented` is the seal of `message` under any key of the ring (constant-time comparison).
    /// `message` (a digest of the whole body) is built only when a seal is presented: every fresh command from a
    /// publisher has none, and this runs for each delivery.
    func verifies(_ presented: AMQPFieldValue?, message makeMessage: () -> Data) -> Bool {
        guard let presented = presented?.stringValue, presented.utf8.count == 64 else { return false }
        let message = makeMessage()
        return keys.contains { key in
            let expected = HMAC<SHA256>.authenticationCode(for: message, using: key)
            return constantTimeEquals(expected.map { String(format: "%02x", $0) }.joined(), presented.lowercased())
        }
    }

    /// The delivery's headers with every relay header removed unless the relay sealed them.
    public func trustedHeaders(of delivery: AMQPDelivery) -> AMQPTable {
        let headers = delivery.properties.headers
        if verify(headers, body: delivery.body) { return headers }
        return headers.filter { !Self.isRelayHeader($0.key) }
    }
}
