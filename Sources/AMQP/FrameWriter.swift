import CRabbitMQ
import Glibc

/// Publishes and acks that the connection thread frames itself and writes many at a time with one `send`.
///
/// rabbitmq-c's `amqp_basic_publish` writes a publish's three frames (method, content header, body) with three
/// `send` calls, and `amqp_basic_ack` one per ack: on a busy consumer that was most of the connection thread's
/// CPU. Here the frames of a whole batch of work items go into one buffer, written once before the thread reads
/// from the broker or lets rabbitmq-c send anything (the order on the wire stays the order of the calls).
/// Properties are encoded by rabbitmq-c (`amqp_encode_properties`), so field tables keep one encoder.
///
/// Plain TCP only: over TLS rabbitmq-c owns the byte stream, and the worker uses its calls.
struct FrameWriter {
    private var buffer: [UInt8] = []
    /// Where a content header's properties are encoded (reused; 4 KB unless a message's properties need more).
    private var scratch: [UInt8] = []

    /// Buffers above this are given back after a flush (a rare large message must not stay resident).
    private static let keptCapacity = 256 * 1024

    var isEmpty: Bool { buffer.isEmpty }

    /// Appends a `basic.publish` with its content; false (nothing appended) when it cannot be framed here: a
    /// name longer than a short string, or properties that do not encode within a frame. The caller then
    /// publishes through rabbitmq-c, which reports the problem.
    mutating func appendPublish(
        channel: UInt16, exchange: String, routingKey: String, mandatory: Bool,
        properties: inout amqp_basic_properties_t, body: [UInt8], frameMax: Int
    ) -> Bool {
        let exchangeBytes = exchange.utf8
        let routingKeyBytes = routingKey.utf8
        guard exchangeBytes.count <= 255, routingKeyBytes.count <= 255, frameMax > 8 else { return false }
        let start = buffer.count
        // basic.publish (class 60, method 40): reserved-1, exchange, routing-key, mandatory/immediate bits.
        var frame = beginFrame(type: 1, channel: channel)
        append16(60)
        append16(40)
        append16(0)
        buffer.append(UInt8(exchangeBytes.count))
        buffer.append(contentsOf: exchangeBytes)
        buffer.append(UInt8(routingKeyBytes.count))
        buffer.append(contentsOf: routingKeyBytes)
        buffer.append(mandatory ? 1 : 0)
        endFrame(frame)
        // Content header: class 60, weight 0, body size, then the property flags and values (encoded into 4 KB,
        // or a whole frame's worth when they need more).
        var encoded = Int32(-1)
        for size in [min(4096, frameMax), frameMax] where encoded < 0 {
            if scratch.count < size { scratch = [UInt8](repeating: 0, count: size) }
            encoded = scratch.withUnsafeMutableBytes { raw in
                amqp_encode_properties(60, &properties, amqp_bytes_t(len: size, bytes: raw.baseAddress))
            }
        }
        guard encoded >= 0, encoded + 12 + 8 <= frameMax else {
            buffer.removeSubrange(start...)
            return false
        }
        frame = beginFrame(type: 2, channel: channel)
        append16(60)
        append16(0)
        append64(UInt64(body.count))
        buffer.append(contentsOf: scratch[0..<Int(encoded)])
        endFrame(frame)
        // Body frames of at most frame-max bytes each (frame overhead: 8 bytes); none for an empty body.
        let chunk = frameMax - 8
        var offset = 0
        while offset < body.count {
            let end = min(body.count, offset + chunk)
            frame = beginFrame(type: 3, channel: channel)
            buffer.append(contentsOf: body[offset..<end])
            endFrame(frame)
            offset = end
        }
        return true
    }

    /// Appends a `basic.ack` (class 60, method 80).
    mutating func appendAck(channel: UInt16, deliveryTag: UInt64, multiple: Bool) {
        let frame = beginFrame(type: 1, channel: channel)
        append16(60)
        append16(80)
        append64(deliveryTag)
        buffer.append(multiple ? 1 : 0)
        endFrame(frame)
    }

    /// Writes everything buffered to `descriptor`; nil when written, else the `errno` that stopped it (the
    /// buffer is emptied either way: after a failed write the connection is dropped).
    mutating func flush(to descriptor: Int32) -> Int32? {
        defer {
            if buffer.capacity > Self.keptCapacity {
                buffer = []
            } else {
                buffer.removeAll(keepingCapacity: true)
            }
        }
        var offset = 0
        while offset < buffer.count {
            let sent = buffer.withUnsafeBytes { raw in
                send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                offset += sent
                continue
            }
            let failure = sent < 0 ? errno : EPIPE
            if failure == EINTR { continue }
            if failure == EAGAIN || failure == EWOULDBLOCK {
                // The socket's send buffer is full (the broker reads slowly or applies flow control): wait for it.
                var waiting = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                _ = poll(&waiting, 1, 1000)
                continue
            }
            return failure
        }
        return nil
    }

    /// Forgets what is buffered (the connection is gone).
    mutating func discard() {
        buffer.removeAll(keepingCapacity: buffer.capacity <= Self.keptCapacity)
    }

    // MARK: - Encoding

    private mutating func beginFrame(type: UInt8, channel: UInt16) -> Int {
        buffer.append(type)
        append16(channel)
        let sizeIndex = buffer.count
        buffer.append(contentsOf: [0, 0, 0, 0])
        return sizeIndex
    }

    private mutating func endFrame(_ sizeIndex: Int) {
        let size = UInt32(buffer.count - sizeIndex - 4)
        buffer[sizeIndex] = UInt8(truncatingIfNeeded: size >> 24)
        buffer[sizeIndex + 1] = UInt8(truncatingIfNeeded: size >> 16)
        buffer[sizeIndex + 2] = UInt8(truncatingIfNeeded: size >> 8)
        buffer[sizeIndex + 3] = UInt8(truncatingIfNeeded: size)
        buffer.append(0xCE)
    }

    private mutating func append16(_ value: UInt16) {
        buffer.append(UInt8(truncatingIfNeeded: value >> 8))
        buffer.append(UInt8(truncatingIfNeeded: value))
    }

    private mutating func append64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { buffer.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
}
