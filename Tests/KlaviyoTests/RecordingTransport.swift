import Klaviyo
import Synchronization

/// A transport seam for unit tests: answers with canned responses (or failures) and keeps the requests
/// it was given, so tests can check exactly what the client sends.
final class RecordingTransport: KlaviyoTransport {
    let requests = Mutex<[KlaviyoHTTPRequest]>([])
    let answer: @Sendable (KlaviyoHTTPRequest) throws(KlaviyoTransportFailure) -> KlaviyoHTTPResponse

    init(answer: @escaping @Sendable (KlaviyoHTTPRequest) throws(KlaviyoTransportFailure) -> KlaviyoHTTPResponse) {
        self.answer = answer
    }

    func send(_ request: KlaviyoHTTPRequest) async throws(KlaviyoTransportFailure) -> KlaviyoHTTPResponse {
        requests.withLock { $0.append(request) }
        return try answer(request)
    }

    var last: KlaviyoHTTPRequest? { requests.withLock { $0.last } }

    static func json(
        _ status: Int, _ body: String, headers: [(name: String, value: String)] = []
    ) -> KlaviyoHTTPResponse {
        KlaviyoHTTPResponse(
            status: status, headers: [("Content-Type", "application/vnd.api+json")] + headers, body: Array(body.utf8))
    }
}
