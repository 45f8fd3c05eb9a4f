public import AMQP
import Klaviyo

/// Deliveries of one account carried as ONE message (docs/contracts.md, "Bundles"): while an account holds its
/// share of a process's consumer slots, its further deliveries are packed into a bundle and parked in the
/// shortest retry tier, so the commands of other accounts behind them in the shared queue are reached at once
/// instead of after the whole backlog (issue #8 item 4).
///
/// The bundle's body is a binary record of each member as the broker delivered it: body byte for byte,
/// exchange, routing key, redelivered flag and every property (headers with their AMQP types). The bundle's
/// headers carry `x-relay-bundle` (the member count) and the relay's seal over that and the body, so a
/// publisher cannot forge one: a message whose `x-relay-bundle` is not sealed is an ordinary command.
public struct DeliveryBundle: Sendable, Hashable {
    /// The header that marks a bundle (its value: the member count). Sealed (``HeaderSeal``).
    public static let header = "x-relay-bundle"
    /// Sealed on a member parked again after its bundle was redelivered: it may have reached Klaviyo before.
    public static let redeliveredHeader = "x-relay-redelivered"

    /// One carried delivery.
    public struct Member: Sendable, Hashable {
        /// The body, byte for byte.
        public var body: [UInt8]
        /// The properties, headers included.
        public var properties: AMQPProperties
        /// The exchange it was published to.
        public var exchange: String
        /// The routing key it was delivered with.
        public var routingKey: String
        /// Whether the broker had delivered it before.
        public var redelivered: Bool

        /// Creates a member.
        public init(body: [UInt8], properties: AMQPProperties, exchange: String, routingKey: String, redelivered: Bool)
        {
            self.body = body
            self.properties = properties
            self.exchange = exchange
            self.routingKey = routingKey
            self.redelivered = redelivered
        }

        /// The member as a delivery carries it.
        public init(_ delivery: AMQPDelivery) {
            self.init(
                body: delivery.body, properties: delivery.properties, exchange: delivery.exchange,
                routingKey: delivery.routingKey, redelivered: delivery.redelivered)
        }

        /// The bytes the member takes in a bundle's body (its body is counted, not copied).
        public var encodedSize: Int {
            var writer = Writer()
            writer.string(exchange)
            writer.string(routingKey)
            writer.u8(0)
            writer.properties(properties)
            return writer.bytes.count + 4 + body.count
        }
    }

    /// The members, in the order they were delivered.
    public var members: [Member]

    /// Creates a bundle.
    public init(members: [Member]) {
        self.members = members
    }

    /// Why a body is not a bundle.
    public struct Malformed: Error, CustomStringConvertible {
        /// What is wrong.
        public var description: String
    }

    static let magic: [UInt8] = Array("KRB1".utf8)

    /// The body of the bundle message.
    public func encoded() -> [UInt8] {
        var writer = Writer()
        writer.bytes.reserveCapacity(members.reduce(16) { $0 + $1.body.count + 256 })
        writer.bytes += Self.magic
        writer.u32(members.count)
        for member in members {
            writer.string(member.exchange)
            writer.string(member.routingKey)
            writer.u8(member.redelivered ? 1 : 0)
            writer.properties(member.properties)
            writer.data(member.body)
        }
        return writer.bytes
    }

    /// Reads a bundle body.
    /// - Throws: ``Malformed`` for anything but a complete bundle (truncated, trailing bytes, unknown tags).
    public init(decoding body: [UInt8]) throws(Malformed) {
        var reader = Reader(bytes: body)
        guard try reader.take(Self.magic.count).elementsEqual(Self.magic) else {
            throw Malformed(description: "not a bundle")
        }
        let count = try reader.u32()
        var members: [Member] = []
        members.reserveCapacity(min(count, 10_000))
        for _ in 0..<count {
            let exchange = try reader.string()
            let routingKey = try reader.string()
            let redelivered = try reader.u8() == 1
            let properties = try reader.properties()
            let body = try reader.data()
            members.append(
                Member(
                    body: body, properties: properties, exchange: exchange, routingKey: routingKey,
                    redelivered: redelivered))
        }
        guard reader.offset == body.count else { throw Malformed(description: "trailing bytes after the members") }
        self.members = members
    }

    /// The top-level `account_id` of a command body, without decoding the rest (nil when there is none, the body
    /// is not a JSON object or the value is not a plain string). Decides which account a delivery belongs to
    /// before a slot is taken; the command decoder still validates everything.
    /// A body with an escape the scanner does not decode (`"account\u005fid"`, `"org\u005fhot"`) is parsed
    /// whole, as the decoder will: escaping cannot take a command out of its account's share.
    public static func accountID(of body: [UInt8]) -> String? {
        var scanner = JSONScanner(bytes: body)
        if let account = scanner.topLevelString(named: Array("account_id".utf8)) { return account }
        guard body.contains(0x5C) else { return nil }
        return (try? JSONValue.parse(body))?["account_id"]?.stringValue
    }
}

// MARK: - Binary layout

private enum Tag: UInt8 {
    case string = 1
    case bool
    case int
    case double
    case timestamp
    case table
    case array
    case bytes
    case void
}

private struct Writer {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: Int) {
        let value = UInt32(clamping: value)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
    mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
    mutating func data(_ value: [UInt8]) {
        u32(value.count)
        bytes += value
    }
    mutating func string(_ value: String) { data(Array(value.utf8)) }
    mutating func optional(_ value: String?) {
        guard let value else { return u8(0) }
        u8(1)
        string(value)
    }

    mutating func properties(_ properties: AMQPProperties) {
        for text in [
            properties.contentType, properties.contentEncoding, properties.correlationID, properties.replyTo,
            properties.expiration, properties.messageID, properties.type, properties.userID, properties.appID,
        ] {
            optional(text)
        }
        u8(properties.persistent ? 1 : 0)
        if let priority = properties.priority {
            u8(1)
            u8(priority)
        } else {
            u8(0)
        }
        if let timestamp = properties.timestamp {
            u8(1)
            u64(timestamp)
        } else {
            u8(0)
        }
        table(properties.headers)
    }

    mutating func table(_ table: AMQPTable) {
        u32(table.count)
        for key in table.keys.sorted() {
            string(key)
            value(table[key]!)
        }
    }

    mutating func value(_ value: AMQPFieldValue) {
        switch value {
        case .string(let text):
            u8(Tag.string.rawValue)
            string(text)
        case .bool(let flag):
            u8(Tag.bool.rawValue)
            u8(flag ? 1 : 0)
        case .int(let number):
            u8(Tag.int.rawValue)
            u64(UInt64(bitPattern: number))
        case .double(let number):
            u8(Tag.double.rawValue)
            u64(number.bitPattern)
        case .timestamp(let seconds):
            u8(Tag.timestamp.rawValue)
            u64(seconds)
        case .table(let nested):
            u8(Tag.table.rawValue)
            table(nested)
        case .array(let items):
            u8(Tag.array.rawValue)
            u32(items.count)
            for item in items { self.value(item) }
        case .bytes(let raw):
            u8(Tag.bytes.rawValue)
            data(raw)
        case .void:
            u8(Tag.void.rawValue)
        }
    }
}

private struct Reader {
    let bytes: [UInt8]
    var offset = 0
    /// Nesting of tables and arrays read so far (a hostile body cannot recurse without bound).
    var depth = 0

    func malformed(_ what: String) -> DeliveryBundle.Malformed {
        DeliveryBundle.Malformed(description: "\(what) at byte \(offset)")
    }

    mutating func take(_ count: Int) throws(DeliveryBundle.Malformed) -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - offset else { throw malformed("truncated bundle") }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }
    mutating func u8() throws(DeliveryBundle.Malformed) -> UInt8 { try take(1).first! }
    mutating func u32() throws(DeliveryBundle.Malformed) -> Int {
        try take(4).reduce(0) { $0 << 8 | Int($1) }
    }
    mutating func u64() throws(DeliveryBundle.Malformed) -> UInt64 {
        try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
    mutating func data() throws(DeliveryBundle.Malformed) -> [UInt8] { Array(try take(try u32())) }
    mutating func string() throws(DeliveryBundle.Malformed) -> String {
        let raw = try data()
        guard let text = String(validating: raw, as: UTF8.self) else { throw malformed("invalid UTF-8") }
        return text
    }
    mutating func optional() throws(DeliveryBundle.Malformed) -> String? {
        try u8() == 0 ? nil : try string()
    }

    mutating func properties() throws(DeliveryBundle.Malformed) -> AMQPProperties {
        var properties = AMQPProperties()
        properties.contentType = try optional()
        properties.contentEncoding = try optional()
        properties.correlationID = try optional()
        properties.replyTo = try optional()
        properties.expiration = try optional()
        properties.messageID = try optional()
        properties.type = try optional()
        properties.userID = try optional()
        properties.appID = try optional()
        properties.persistent = try u8() == 1
        properties.priority = try u8() == 0 ? nil : try u8()
        properties.timestamp = try u8() == 0 ? nil : try u64()
        properties.headers = try table()
        return properties
    }

    mutating func table() throws(DeliveryBundle.Malformed) -> AMQPTable {
        let count = try u32()
        guard count <= bytes.count - offset else { throw malformed("truncated table") }
        var table: AMQPTable = [:]
        for _ in 0..<count {
            let key = try string()
            table[key] = try value()
        }
        return table
    }

    mutating func value() throws(DeliveryBundle.Malformed) -> AMQPFieldValue {
        guard let tag = Tag(rawValue: try u8()) else { throw malformed("unknown field type") }
        switch tag {
        case .string: return .string(try string())
        case .bool: return .bool(try u8() == 1)
        case .int: return .int(Int64(bitPattern: try u64()))
        case .double: return .double(Double(bitPattern: try u64()))
        case .timestamp: return .timestamp(try u64())
        case .bytes: return .bytes(try data())
        case .void: return .void
        case .table, .array:
            depth += 1
            defer { depth -= 1 }
            guard depth <= 32 else { throw malformed("nesting too deep") }
            if tag == .table { return .table(try table()) }
            let count = try u32()
            guard count <= bytes.count - offset else { throw malformed("truncated array") }
            var items: [AMQPFieldValue] = []
            for _ in 0..<count { items.append(try value()) }
            return .array(items)
        }
    }
}

// MARK: - account_id without a full decode

/// Walks the top level of a JSON object, skipping values, to find one string member. Anything unexpected ends
/// the walk with nil (the command decoder reports what is wrong).
private struct JSONScanner {
    let bytes: [UInt8]
    var index = 0

    mutating func skipSpace() {
        while index < bytes.count,
            bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D
                || bytes[index] == 0x09
        {
            index += 1
        }
    }

    /// The raw bytes of a string starting at `index` (at its opening quote); escapes kept as they are (nil when
    /// unterminated). `escaped` tells whether it had any.
    mutating func rawString() -> (ArraySlice<UInt8>, escaped: Bool)? {
        guard index < bytes.count, bytes[index] == 0x22 else { return nil }
        let start = index + 1
        var escaped = false
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case 0x5C:
                escaped = true
                index += 2
            case 0x22:
                defer { index += 1 }
                return (bytes[start..<index], escaped)
            default:
                index += 1
            }
        }
        return nil
    }

    /// Skips one value (string, number, literal, object or array); false when malformed.
    mutating func skipValue() -> Bool {
        skipSpace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case 0x22:
            return rawString() != nil
        case 0x7B, 0x5B:
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case 0x22:
                    guard rawString() != nil else { return false }
                    continue
                case 0x7B, 0x5B:
                    depth += 1
                case 0x7D, 0x5D:
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        return true
                    }
                default:
                    break
                }
                index += 1
            }
            return false
        default:
            while index < bytes.count, ![0x2C, 0x7D, 0x5D, 0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) {
                index += 1
            }
            return true
        }
    }

    mutating func topLevelString(named name: [UInt8]) -> String? {
        skipSpace()
        guard index < bytes.count, bytes[index] == 0x7B else { return nil }
        index += 1
        while true {
            skipSpace()
            guard let (key, keyEscaped) = rawString() else { return nil }
            skipSpace()
            guard index < bytes.count, bytes[index] == 0x3A else { return nil }
            index += 1
            skipSpace()
            if !keyEscaped, key.elementsEqual(name) {
                guard let (value, escaped) = rawString(), !escaped else { return nil }
                return String(validating: value, as: UTF8.self)
            }
            guard skipValue() else { return nil }
            skipSpace()
            guard index < bytes.count else { return nil }
            if bytes[index] == 0x2C {
                index += 1
                continue
            }
            return nil
        }
    }
}
