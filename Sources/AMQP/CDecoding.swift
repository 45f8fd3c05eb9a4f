import CRabbitMQ

/// Copies values out of rabbitmq-c memory into Swift values. Call before the next frame read or buffer release.
enum CDecoding {
    static func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let base = bytes.bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: base, count: bytes.len), as: UTF8.self)
    }

    static func bytes(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard bytes.len > 0, let base = bytes.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: bytes.len))
    }

    static func table(_ table: amqp_table_t) -> AMQPTable {
        guard table.num_entries > 0, let entries = table.entries else { return [:] }
        var result: AMQPTable = [:]
        for index in 0..<Int(table.num_entries) {
            let entry = entries[index]
            result[string(entry.key)] = field(entry.value)
        }
        return result
    }

    static func field(_ field: amqp_field_value_t) -> AMQPFieldValue {
        func kind(_ kind: amqp_field_value_kind_t) -> UInt8 { UInt8(kind.rawValue) }
        switch field.kind {
        case kind(AMQP_FIELD_KIND_BOOLEAN): return .bool(field.value.boolean != 0)
        case kind(AMQP_FIELD_KIND_I8): return .int(Int64(field.value.i8))
        case kind(AMQP_FIELD_KIND_U8): return .int(Int64(field.value.u8))
        case kind(AMQP_FIELD_KIND_I16): return .int(Int64(field.value.i16))
        case kind(AMQP_FIELD_KIND_U16): return .int(Int64(field.value.u16))
        case kind(AMQP_FIELD_KIND_I32): return .int(Int64(field.value.i32))
        case kind(AMQP_FIELD_KIND_U32): return .int(Int64(field.value.u32))
        case kind(AMQP_FIELD_KIND_I64): return .int(field.value.i64)
        case kind(AMQP_FIELD_KIND_U64): return .int(Int64(truncatingIfNeeded: field.value.u64))
        case kind(AMQP_FIELD_KIND_F32): return .double(Double(field.value.f32))
        case kind(AMQP_FIELD_KIND_F64): return .double(field.value.f64)
        case kind(AMQP_FIELD_KIND_DECIMAL):
            var value = Double(field.value.decimal.value)
            for _ in 0..<field.value.decimal.decimals { value /= 10 }
            return .double(value)
        case kind(AMQP_FIELD_KIND_UTF8): return .string(string(field.value.bytes))
        case kind(AMQP_FIELD_KIND_BYTES): return .bytes(bytes(field.value.bytes))
        case kind(AMQP_FIELD_KIND_TIMESTAMP): return .timestamp(field.value.u64)
        case kind(AMQP_FIELD_KIND_TABLE): return .table(table(field.value.table))
        case kind(AMQP_FIELD_KIND_ARRAY):
            let array = field.value.array
            guard array.num_entries > 0, let entries = array.entries else { return .array([]) }
            return .array((0..<Int(array.num_entries)).map { CDecoding.field(entries[$0]) })
        default: return .void
        }
    }

    static func properties(_ properties: amqp_basic_properties_t) -> AMQPProperties {
        let flags = properties._flags
        func has(_ flag: Int32) -> Bool { flags & UInt32(flag) != 0 }
        func text(_ flag: Int32, _ value: amqp_bytes_t) -> String? { has(flag) ? string(value) : nil }
        var result = AMQPProperties()
        result.contentType = text(AMQP_BASIC_CONTENT_TYPE_FLAG, properties.content_type)
        result.contentEncoding = text(AMQP_BASIC_CONTENT_ENCODING_FLAG, properties.content_encoding)
        result.correlationID = text(AMQP_BASIC_CORRELATION_ID_FLAG, properties.correlation_id)
        result.replyTo = text(AMQP_BASIC_REPLY_TO_FLAG, properties.reply_to)
        result.expiration = text(AMQP_BASIC_EXPIRATION_FLAG, properties.expiration)
        result.messageID = text(AMQP_BASIC_MESSAGE_ID_FLAG, properties.message_id)
        result.type = text(AMQP_BASIC_TYPE_FLAG, properties.type)
        result.userID = text(AMQP_BASIC_USER_ID_FLAG, properties.user_id)
        result.appID = text(AMQP_BASIC_APP_ID_FLAG, properties.app_id)
        if has(AMQP_BASIC_HEADERS_FLAG) { result.headers = table(properties.headers) }
        result.persistent = has(AMQP_BASIC_DELIVERY_MODE_FLAG) && properties.delivery_mode == 2
        if has(AMQP_BASIC_PRIORITY_FLAG) { result.priority = properties.priority }
        if has(AMQP_BASIC_TIMESTAMP_FLAG) { result.timestamp = properties.timestamp }
        return result
    }
}
