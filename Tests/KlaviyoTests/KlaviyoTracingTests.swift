import Foundation
import InMemoryTracing
import Klaviyo
import Logging
import Synchronization
import Testing
import Tracing

/// The one tracer of the test process (InstrumentationSystem can be bootstrapped once per process).
enum TestTracer {
    static let shared: InMemoryTracer = {
        let tracer = InMemoryTracer()
        InstrumentationSystem.bootstrap(tracer)
        return tracer
    }()
}

/// Admits every call (so the limiter-wait span is there).
struct AdmitAll: KlaviyoCallGate {
    func admit(operationID: String, credential: KlaviyoCredential) async throws(KlaviyoError) {}
}

/// Spans of Klaviyo calls (issue #11), received in-process by an in-memory tracer: each call is a client span,
/// child of the current span (the command's), with its operation and status, and the request carries the trace
/// context, so Klaviyo-side tracing would join the command's trace; a 429 and its retry are siblings in one trace.
@Suite("Klaviyo call spans")
struct KlaviyoTracingTests {
    @Test func callsAreClientSpansUnderTheCommandAndCarryTheContext() async throws {
        let tracer = TestTracer.shared
        let calls = Mutex<Int>(0)
        let transport = RecordingTransport { _ throws(KlaviyoTransportFailure) in
            let number = calls.withLock { count in
                count += 1
                return count
            }
            return number == 1
                ? RecordingTransport.json(
                    429, #"{"errors":[{"status":429,"code":"throttled"}]}"#,
                    headers: [
                        ("Retry-After", "1")
                    ])
                : RecordingTransport.json(200, #"{"data":{"type":"profile","id":"01P"}}"#)
        }
        let client = KlaviyoClient(
            baseURL: "http://127.0.0.1:1", transport: transport, userAgent: "tests", logger: Logger(label: "tests")
        ).gated(by: AdmitAll())
        let request = KlaviyoRequest(
            operationID: "create_or_update_profile", method: "POST", path: "/api/profile-import", isIdempotent: true)
        let commandName = "relay.command test-\(UUID().uuidString)"
        let (traceID, commandSpanID): (String, String) = await withSpan(commandName, ofKind: .consumer) { span in
            let throttled = await #expect(throws: KlaviyoError.self) {
                _ = try await client.send(request, credential: .apiKey("pk_test"))
            }
            #expect(throttled?.code == .throttled)
            _ = try? await client.send(request, credential: .apiKey("pk_test"))
            let context = span.context.inMemorySpanContext!
            return (context.traceID, context.spanID)
        }

        let spans = tracer.finishedSpans.filter { $0.traceID == traceID }
        let command = try #require(spans.first { $0.operationName == commandName })
        #expect(command.parentSpanID == nil)
        let klaviyo = spans.filter { $0.operationName == "klaviyo.create_or_update_profile" }
        #expect(klaviyo.count == 2)
        #expect(klaviyo.allSatisfy { $0.parentSpanID == commandSpanID && $0.kind == .client })
        #expect(
            klaviyo.map { $0.attributes["http.response.status_code"]?.toSpanAttribute() } == [.int64(429), .int64(200)])
        #expect(
            klaviyo.allSatisfy {
                $0.attributes["klaviyo.operation"]?.toSpanAttribute() == .string("create_or_update_profile")
            })
        #expect(klaviyo.first?.status?.code == .error)
        let waits = spans.filter { $0.operationName == "relay.rate_limit.wait" }
        #expect(waits.count == 2 && waits.allSatisfy { $0.parentSpanID == commandSpanID })

        // Each request carried its own span's context (the in-memory tracer's headers stand for traceparent).
        let sent = transport.requests.withLock { $0 }
        #expect(sent.count == 2)
        for (request, span) in zip(sent, klaviyo) {
            let headers = Dictionary(request.headers.map { ($0.name, $0.value) }) { first, _ in first }
            #expect(headers[InMemoryTracer.traceIDKey] == traceID)
            #expect(headers[InMemoryTracer.spanIDKey] == span.spanID)
        }
    }
}
