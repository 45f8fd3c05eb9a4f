public import AMQP
import Foundation
public import Klaviyo

/// How `dlq show` and `dlq export` render a dead letter's headers and properties. Total over whatever a
/// message carries: a hand-made dead letter may hold any AMQP value (a `timestamp` of `UInt64.max`, a
/// `u64` header), and rendering it never traps.
public enum DeadLetterExport {
    /// Text from a dead letter made safe for an operator's terminal: control characters (C0, DEL, C1) and the
    /// bidirectional overrides are shown as `\u{…}` instead of being written raw, so a hostile command (an
    /// `account_id` with an OSC or CSI sequence, a routing key, a not-JSON body) cannot set the terminal's title
    /// or clipboard, move the cursor to rewrite the table `dlq purge` asks about, or reorder what is shown.
    /// `keepingLines` keeps line feeds and tabs (a pretty-printed body).
    public static func terminalSafe(_ text: String, keepingLines: Bool = false) -> String {
        func unsafe(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar.value {
            case 0x0A, 0x09: return !keepingLines
            case 0x00...0x1F, 0x7F...0x9F: return true
            case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
            default: return false
            }
        }
        guard text.unicodeScalars.contains(where: unsafe) else { return text }
        var safe = ""
        for scalar in text.unicodeScalars {
            if unsafe(scalar) {
                safe += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                safe.unicodeScalars.append(scalar)
            }
        }
        return safe
    }

    /// One header value as text (`dlq show`).
    public static func describe(_ value: AMQPFieldValue) -> String {
        switch value {
        case .string(let text): return text
        case .bool(let flag): return String(flag)
        case .int(let number): return String(number)
        case .double(let number): return String(number)
        case .timestamp(let seconds): return Timestamp.format(epochSeconds: seconds)
        case .bytes(let bytes): return String(validating: bytes, as: UTF8.self) ?? "<\(bytes.count) bytes>"
        case .void: return "(void)"
        case .array(let values): return "[" + values.map(describe).joined(separator: ", ") + "]"
        case .table(let table):
            return "{" + table.keys.sorted().map { "\($0): \(describe(table[$0]!))" }.joined(separator: ", ") + "}"
        }
    }

    /// One header value as JSON (`dlq export`); bytes as base64, timestamps as RFC 3339, non-finite doubles
    /// (not representable in JSON) as their text.
    public static func json(_ value: AMQPFieldValue) -> JSONValue {
        switch value {
        case .string(let text): return .string(text)
        case .bool(let flag): return .bool(flag)
        case .int(let number): return .int(number)
        case .double(let number): return number.isFinite ? .double(number) : .string(String(number))
        case .timestamp(let seconds): return .string(Timestamp.format(epochSeconds: seconds))
        case .bytes(let bytes): return .string(Data(bytes).base64EncodedString())
        case .void: return .null
        case .array(let values): return .array(values.map(json))
        case .table(let table): return .object(table.mapValues(json))
        }
    }

    /// One NDJSON line of `dlq export`: the summary, the routing key, the properties, the headers and the body
    /// (as text when it is UTF-8, else `body_base64`).
    public static func line(_ held: DeadLetterQueue.Held, nowMilliseconds: Int64) -> String {
        let properties = held.delivery.properties
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        var line: [String: JSONValue] = [
            "summary": held.summary.json(nowMilliseconds: nowMilliseconds),
            "routing_key": .string(held.delivery.routingKey),
            "properties": [
                "content_type": text(properties.contentType), "content_encoding": text(properties.contentEncoding),
                "message_id": text(properties.messageID), "correlation_id": text(properties.correlationID),
                "reply_to": text(properties.replyTo), "type": text(properties.type), "app_id": text(properties.appID),
                "expiration": text(properties.expiration), "persistent": .bool(properties.persistent),
                "timestamp": properties.timestamp.map { .int(Int64(clamping: $0)) } ?? .null,
            ],
            "headers": .object(properties.headers.mapValues(json)),
        ]
        if let body = String(validating: held.delivery.body, as: UTF8.self) {
            line["body"] = .string(body)
        } else {
            line["body_base64"] = .string(Data(held.delivery.body).base64EncodedString())
        }
        return String(decoding: JSONValue.object(line).jsonBytes(), as: UTF8.self)
    }
}
