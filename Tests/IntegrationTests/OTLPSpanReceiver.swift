import Foundation
import Hummingbird
import Klaviyo
import Logging
import NIOCore
import RelayTestSupport
import ServiceLifecycle
import Synchronization

/// A small OTLP/HTTP trace receiver (`POST /v1/traces`, JSON encoding) on an ephemeral port of 127.0.0.1: a
/// `klaviyo-relay` process started with `OTEL_EXPORTER_OTLP_ENDPOINT` at ``endpoint`` and
/// `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` exports its spans here, and the test reads them from ``spans``.
///
/// swift-otel 1.6 writes the JSON with SwiftProtobuf's mapping: ids are base64 (the OTLP specification asks for
/// hex; both are accepted and kept as lowercase hex), enums are numbers and 64-bit integers are strings.
final class OTLPSpanReceiver: Sendable {
    /// One exported span, the fields the tests look at.
    struct Span: Sendable, CustomStringConvertible {
        var traceID: String
        var spanID: String
        /// Empty for a root span.
        var parentSpanID: String
        var traceState: String
        var name: String
        /// OTLP `SpanKind`: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
        var kind: Int
        /// OTLP `Status.StatusCode`: 0 unset, 1 ok, 2 error.
        var statusCode: Int
        /// Attribute values as text (numbers and booleans too).
        var attributes: [String: String]
        /// Start time, nanoseconds since the epoch.
        var startNanoseconds: UInt64

        var description: String {
            "\(name) [\(spanID) ← \(parentSpanID.isEmpty ? "root" : parentSpanID)] kind \(kind) status \(statusCode) "
                + "\(attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
        }
    }

    /// OTLP `SpanKind` values.
    enum Kind {
        static let client = 3
        static let consumer = 5
    }

    private let received = Mutex<[Span]>([])
    private let requests = Mutex<Int>(0)
    private let undecodable = Mutex<[String]>([])
    private let boundPort = Mutex<Int?>(nil)
    private let server = Mutex<(group: ServiceGroup, task: Task<Void, any Error>)?>(nil)

    /// Every span received so far, in arrival order.
    var spans: [Span] { received.withLock { $0 } }
    /// Export requests received so far.
    var requestCount: Int { requests.withLock { $0 } }
    /// Bodies that were not OTLP JSON (the test reports them).
    var rejectedBodies: [String] { undecodable.withLock { $0 } }

    /// The base URL to set as `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends `/v1/traces`).
    var endpoint: String {
        guard let port = boundPort.withLock({ $0 }) else { preconditionFailure("start() binds the port first") }
        return "http://127.0.0.1:\(port)"
    }

    /// Starts serving and waits until the port is bound.
    func start() async throws {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 16 << 20)
            self.record(Array(buffer: body))
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "{}")))
        }
        var logger = Logger(label: "otlp-receiver")
        logger.logLevel = .warning
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in self.boundPort.withLock { $0 = channel.localAddress?.port } }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        server.withLock { $0 = (group, Task { try await group.run() }) }
        try await eventually("the OTLP receiver to listen", timeout: .seconds(20)) {
            self.boundPort.withLock { $0 != nil }
        }
    }

    /// Stops serving (a graceful shutdown: the exporter's connection is closed, not cancelled).
    func stop() async {
        guard let (group, task) = server.withLock({ $0 }) else { return }
        await group.triggerGracefulShutdown()
        _ = await task.result
    }

    /// Spans of one trace.
    func spans(inTrace traceID: String) -> [Span] {
        spans.filter { $0.traceID == traceID }
    }

    private func record(_ body: [UInt8]) {
        requests.withLock { $0 += 1 }
        guard let document = try? JSONValue.parse(body), let resourceSpans = document["resourceSpans"]?.arrayValue
        else {
            undecodable.withLock { $0.append(String(decoding: body.prefix(500), as: UTF8.self)) }
            return
        }
        let spans = resourceSpans.flatMap { $0["scopeSpans"]?.arrayValue ?? [] }
            .flatMap { $0["spans"]?.arrayValue ?? [] }
            .map(Self.span(_:))
        received.withLock { $0 += spans }
    }

    private static func span(_ json: JSONValue) -> Span {
        var attributes: [String: String] = [:]
        for attribute in json["attributes"]?.arrayValue ?? [] {
            guard let key = attribute["key"]?.stringValue, let value = attribute["value"]?.objectValue?.first?.value
            else { continue }
            attributes[key] = text(value)
        }
        return Span(
            traceID: hexID(json["traceId"]?.stringValue ?? "", bytes: 16),
            spanID: hexID(json["spanId"]?.stringValue ?? "", bytes: 8),
            parentSpanID: hexID(json["parentSpanId"]?.stringValue ?? "", bytes: 8),
            traceState: json["traceState"]?.stringValue ?? "", name: json["name"]?.stringValue ?? "",
            kind: json["kind"].map(text).flatMap { Int($0) } ?? 0,
            statusCode: json["status"]?["code"].map(text).flatMap { Int($0) } ?? 0,
            attributes: attributes,
            startNanoseconds: json["startTimeUnixNano"].map(text).flatMap { UInt64($0) } ?? 0)
    }

    /// A scalar as text: strings as they are, numbers and booleans as JSON writes them.
    private static func text(_ value: JSONValue) -> String {
        if let string = value.stringValue { return string }
        return String(decoding: value.jsonBytes(), as: UTF8.self)
    }

    /// An id as lowercase hex, from hex (the OTLP specification) or base64 (SwiftProtobuf's JSON for bytes).
    static func hexID(_ encoded: String, bytes: Int) -> String {
        if encoded.isEmpty { return "" }
        if encoded.count == bytes * 2, encoded.allSatisfy(\.isHexDigit) { return encoded.lowercased() }
        guard let data = Data(base64Encoded: encoded) else { return encoded }
        return data.map { String(format: "%02x", $0) }.joined()
    }
}
