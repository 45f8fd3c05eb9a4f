import CRabbitMQ
import Glibc

/// Owns the malloc'd memory behind C tables, byte strings and properties built for one rabbitmq-c call.
///
/// Everything handed out stays valid until the arena is deinitialised; keep the arena alive (e.g. with
/// `withExtendedLifetime`) for the duration of the call. Not thread-safe, never shared.
final class CArena {
    /// Small requests are carved out of blocks of this size (a publish's strings and properties fit in one): one
    /// malloc per block instead of one per string.
    static let blockSize = 2048
    /// Requests above this get their own allocation.
    static let largestCarved = 512

    private var allocations: [UnsafeMutableRawPointer] = []
    private var block: UnsafeMutableRawPointer?
    private var blockUsed = 0

    deinit {
        for allocation in allocations { free(allocation) }
    }

    /// Frees everything handed out so far except the current block, which the next call carves again: an arena
    /// kept for a repeated call (a publish) mallocs nothing once warm. Nothing handed out before stays valid.
    func reset() {
        let kept = block
        for allocation in allocations where allocation != kept { free(allocation) }
        allocations.removeAll(keepingCapacity: true)
        if let kept { allocations.append(kept) }
        blockUsed = 0
    }

    private func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer {
        // 16-byte steps keep every piece aligned for any C type (tables, field values).
        let size = (max(byteCount, 1) + 15) & ~15
        if size > Self.largestCarved { return ownAllocation(size) }
        if block == nil || blockUsed + size > Self.blockSize {
            block = ownAllocation(Self.blockSize)
            blockUsed = 0
        }
        let pointer = block! + blockUsed
        blockUsed += size
        return pointer
    }

    private func ownAllocation(_ byteCount: Int) -> UnsafeMutableRawPointer {
        guard let pointer = malloc(byteCount) else { fatalError("out of memory") }
        allocations.append(pointer)
        return pointer
    }

    /// A copy of `string`'s UTF-8 bytes (not NUL-terminated).
    func bytes(_ string: String) -> amqp_bytes_t {
        var string = string
        return string.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
    }

    /// A copy of `data`.
    func bytes(_ data: [UInt8]) -> amqp_bytes_t {
        data.withUnsafeBytes { bytes($0) }
    }

    private func bytes(_ buffer: UnsafeRawBufferPointer) -> amqp_bytes_t {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return amqp_bytes_t(len: 0, bytes: nil) }
        let pointer = allocate(buffer.count)
        pointer.copyMemory(from: base, byteCount: buffer.count)
        return amqp_bytes_t(len: buffer.count, bytes: pointer)
    }

    /// A NUL-terminated copy of `string`, for the `const char *` parameters of rabbitmq-c.
    func cString(_ string: String) -> UnsafePointer<CChar> {
        var string = string
        return string.withUTF8 { utf8 in
            let pointer = allocate(utf8.count + 1)
            if let base = utf8.baseAddress { pointer.copyMemory(from: base, byteCount: utf8.count) }
            pointer.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
            return UnsafePointer(pointer.bindMemory(to: CChar.self, capacity: utf8.count + 1))
        }
    }

    /// A C table equal to `table` (keys sorted, for stable output).
    func table(_ table: AMQPTable) -> amqp_table_t {
        guard !table.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = allocate(MemoryLayout<amqp_table_entry_t>.stride * table.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: table.count)
        for (index, key) in table.keys.sorted().enumerated() {
            (entries + index).initialize(to: amqp_table_entry_t(key: bytes(key), value: field(table[key]!)))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    private func array(_ values: [AMQPFieldValue]) -> amqp_array_t {
        guard !values.isEmpty else { return amqp_array_t(num_entries: 0, entries: nil) }
        let entries = allocate(MemoryLayout<amqp_field_value_t>.stride * values.count)
            .bindMemory(to: amqp_field_value_t.self, capacity: values.count)
        for (index, value) in values.enumerated() {
            (entries + index).initialize(to: field(value))
        }
        return amqp_array_t(num_entries: Int32(values.count), entries: entries)
    }

    private func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let string):
            field.kind = Self.kind(AMQP_FIELD_KIND_UTF8)
            field.value.bytes = bytes(string)
        case .bool(let bool):
            field.kind = Self.kind(AMQP_FIELD_KIND_BOOLEAN)
            field.value.boolean = bool ? 1 : 0
        case .int(let int):
            field.kind = Self.kind(AMQP_FIELD_KIND_I64)
            field.value.i64 = int
        case .double(let double):
            field.kind = Self.kind(AMQP_FIELD_KIND_F64)
            field.value.f64 = double
        case .timestamp(let timestamp):
            field.kind = Self.kind(AMQP_FIELD_KIND_TIMESTAMP)
            field.value.u64 = timestamp
        case .table(let nested):
            field.kind = Self.kind(AMQP_FIELD_KIND_TABLE)
            field.value.table = table(nested)
        case .array(let values):
            field.kind = Self.kind(AMQP_FIELD_KIND_ARRAY)
            field.value.array = array(values)
        case .bytes(let data):
            field.kind = Self.kind(AMQP_FIELD_KIND_BYTES)
            field.value.bytes = bytes(data)
        case .void:
            field.kind = Self.kind(AMQP_FIELD_KIND_VOID)
        }
        return field
    }

    static func kind(_ kind: amqp_field_value_kind_t) -> UInt8 { UInt8(kind.rawValue) }

    /// C properties equal to `properties`.
    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var result = amqp_basic_properties_t()
        var flags: UInt32 = 0
        func set(_ value: String?, _ flag: Int32, _ field: WritableKeyPath<amqp_basic_properties_t, amqp_bytes_t>) {
            guard let value else { return }
            result[keyPath: field] = bytes(value)
            flags |= UInt32(flag)
        }
        set(properties.contentType, AMQP_BASIC_CONTENT_TYPE_FLAG, \.content_type)
        set(properties.contentEncoding, AMQP_BASIC_CONTENT_ENCODING_FLAG, \.content_encoding)
        set(properties.correlationID, AMQP_BASIC_CORRELATION_ID_FLAG, \.correlation_id)
        set(properties.replyTo, AMQP_BASIC_REPLY_TO_FLAG, \.reply_to)
        set(properties.expiration, AMQP_BASIC_EXPIRATION_FLAG, \.expiration)
        set(properties.messageID, AMQP_BASIC_MESSAGE_ID_FLAG, \.message_id)
        set(properties.type, AMQP_BASIC_TYPE_FLAG, \.type)
        set(properties.userID, AMQP_BASIC_USER_ID_FLAG, \.user_id)
        set(properties.appID, AMQP_BASIC_APP_ID_FLAG, \.app_id)
        if !properties.headers.isEmpty {
            result.headers = table(properties.headers)
            flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
        }
        if properties.persistent {
            result.delivery_mode = 2
            flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        }
        if let priority = properties.priority {
            result.priority = priority
            flags |= UInt32(AMQP_BASIC_PRIORITY_FLAG)
        }
        if let timestamp = properties.timestamp {
            result.timestamp = timestamp
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        result._flags = flags
        return result
    }
}
