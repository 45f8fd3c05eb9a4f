/// Assembles a content-bearing method (`basic.deliver`, `basic.return`) with its header frame and body frames,
/// per channel, into one ``Content``.
///
/// Takes Swift values the worker has already copied out of rabbitmq-c's frames, so it is a plain value with no C.
/// Frames out of order are a protocol error: the connection cannot be trusted any more.
struct ContentAssembly {
    /// The method that announced the content.
    enum Method: Equatable {
        case deliver(
            consumerTag: String, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String)
        case returned(replyCode: UInt16, replyText: String, exchange: String, routingKey: String)
    }

    /// A complete message: its method, properties and the whole body.
    struct Content: Equatable {
        var method: Method
        var properties: AMQPProperties
        var body: [UInt8]
    }

    private struct Partial {
        var method: Method
        var properties = AMQPProperties()
        var bodySize: Int = -1  // -1 until the header frame arrived
        var body: [UInt8] = []
    }

    private var partial: [UInt16: Partial] = [:]

    /// Whether a message is being assembled on `channel`.
    func isAssembling(channel: UInt16) -> Bool { partial[channel] != nil }

    /// A content-bearing method arrived: its header and body follow on `channel`.
    mutating func begin(_ method: Method, channel: UInt16) {
        partial[channel] = Partial(method: method)
    }

    /// The header frame: properties and the announced body size. Returns the message if its body is empty.
    /// - Throws: ``AMQPError/Code/protocolError`` if no method announced content on `channel`, or the header
    ///   came twice.
    mutating func header(channel: UInt16, properties: AMQPProperties?, bodySize: Int) throws(AMQPError) -> Content? {
        guard var content = partial[channel], content.bodySize < 0 else {
            throw AMQPError(code: .protocolError, message: "unexpected content header on channel \(channel)")
        }
        if let properties { content.properties = properties }
        content.bodySize = bodySize
        content.body.reserveCapacity(bodySize)
        return store(content, channel: channel)
    }

    /// A body frame. Returns the message once the announced body size is reached.
    /// - Throws: ``AMQPError/Code/protocolError`` if no header announced a body on `channel`.
    mutating func body(channel: UInt16, fragment: UnsafeRawBufferPointer) throws(AMQPError) -> Content? {
        guard var content = partial[channel], content.bodySize >= 0 else {
            throw AMQPError(code: .protocolError, message: "unexpected content body on channel \(channel)")
        }
        if fragment.count > 0 { content.body.append(contentsOf: fragment) }
        return store(content, channel: channel)
    }

    /// The broker closed `channel`: whatever was being assembled there is gone.
    mutating func discard(channel: UInt16) {
        partial[channel] = nil
    }

    /// The connection is gone: forgets everything being assembled.
    mutating func reset() {
        partial = [:]
    }

    private mutating func store(_ content: Partial, channel: UInt16) -> Content? {
        guard content.bodySize >= 0, content.body.count >= content.bodySize else {
            partial[channel] = content
            return nil
        }
        partial[channel] = nil
        return Content(method: content.method, properties: content.properties, body: content.body)
    }
}
