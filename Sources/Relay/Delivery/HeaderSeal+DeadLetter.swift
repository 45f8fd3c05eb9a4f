public import AMQP
import Crypto
import Foundation

extension HeaderSeal {
    /// Seals a dead letter the relay makes: `x-relay-seal` over the body's SHA-256 and every relay header it carries
    /// (`x-relay-*` and `x-original-*`: the error code and detail, attempts, failure times, original route, and the
    /// command id, account and type `dlq` filters by), so `dlq` can tell the relay's dead letters from those the broker
    /// made of a command as published, whose `x-relay-*` headers are whatever the publisher wrote.
    ///
    /// The message MACed is of its own kind (it starts `dead-letter v1`, a retry's `v1`): a dead letter's seal never
    /// verifies as a retry's, so a dead letter moved back onto the commands exchange headers and all is a fresh
    /// command to the consumers; and a retry's seal, on a retry the broker dead-lettered, never makes it relay-made.
    /// A dead letter whose relay headers cannot be MACed (a value neither a string nor an integer, which the relay
    /// never writes) is left unsealed.
    public func sealDeadLetter(_ headers: inout AMQPTable, body: [UInt8]) {
        headers[Self.header] = nil
        headers[Self.header] = Self.deadLetterMessage(headers: headers, body: body).flatMap(code(for:)).map {
            .string($0)
        }
    }

    /// Whether the relay made this dead letter: its `x-relay-seal` is the seal of these relay headers and this body
    /// under a key of the ring (``sealDeadLetter(_:body:)``). A seal copied onto another body, or onto headers with
    /// a relay header added, removed or changed, does not verify.
    public func verifiesDeadLetter(_ headers: AMQPTable, body: [UInt8]) -> Bool {
        var readable = true
        let verified = verifies(headers[Self.header]) {
            guard let message = Self.deadLetterMessage(headers: headers, body: body) else {
                readable = false
                return Data()
            }
            return message
        }
        return readable && verified
    }

    /// The bytes a dead letter's seal MACs: `dead-letter v1`, the body's SHA-256, then every relay header but the
    /// seal, ordered by the bytes of its name, each as `<length>:<name>` and a typed, length-prefixed value
    /// (`s<length>:<UTF-8>` or `i<length>:<decimal>`), one per line. Lengths make the encoding unambiguous, whatever
    /// the names and values hold. Nil when a relay header is of another type.
    static func deadLetterMessage(headers: AMQPTable, body: [UInt8]) -> Data? {
        var message = Data("dead-letter v1\n".utf8)
        message.append(contentsOf: SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined().utf8)
        message.append(UInt8(ascii: "\n"))
        let names = headers.keys.filter { isRelayHeader($0) && $0 != header }.sorted {
            $0.utf8.lexicographicallyPrecedes($1.utf8)
        }
        func append(_ tag: String, _ bytes: [UInt8]) {
            message.append(contentsOf: "\(tag)\(bytes.count):".utf8)
            message.append(contentsOf: bytes)
        }
        for name in names {
            append("", Array(name.utf8))
            switch headers[name] {
            case .string(let value)?: append("s", Array(value.utf8))
            case .bytes(let value)?: append("s", value)
            case .int(let value)?: append("i", Array(String(value).utf8))
            default: return nil
            }
            message.append(UInt8(ascii: "\n"))
        }
        return message
    }
}
