public import HTTPClient

extension HTTPClient: KlaviyoTransport {
    /// Sends a Klaviyo request through libcurl.
    public func send(_ request: KlaviyoHTTPRequest) async throws(KlaviyoTransportFailure) -> KlaviyoHTTPResponse {
        let headers = HTTPHeaders(request.headers)
        let method = HTTPMethod(rawValue: request.method) ?? .GET
        do {
            let response = try await execute(
                HTTPRequest(
                    method: method, url: request.url, headers: headers, body: request.body, timeout: request.timeout))
            return KlaviyoHTTPResponse(
                status: response.status, headers: response.headers.map { (name: $0.name, value: $0.value) },
                body: response.body)
        } catch let error as HTTPClientError {
            throw KlaviyoTransportFailure(
                message: error.description, isRetriable: error.isRetriable,
                requestMayHaveBeenSent: error.requestMayHaveBeenSent, isTimeout: error.code == .timeout)
        } catch {
            throw KlaviyoTransportFailure(
                message: "\(error)", isRetriable: false, requestMayHaveBeenSent: true, isTimeout: false)
        }
    }
}
