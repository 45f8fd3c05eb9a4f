import Foundation

extension KlaviyoClient {
    /// The request for `GET /api/flows` (get_flows), optionally filtered on status.
    public static func flowsRequest(status: String? = nil) -> KlaviyoRequest {
        var query: [(name: String, value: String)] = []
        if let status { query.append(("filter", "equals(status,\"\(status.replacingBackslashesAndQuotes())\")")) }
        return KlaviyoRequest(
            operationID: "get_flows", method: "GET", path: "/api/flows", query: query, isIdempotent: true)
    }

    /// All flows, following `links.next` through every page (at most `maxPages`).
    public func allFlows(
        status: String? = nil, credential: KlaviyoCredential, maxPages: Int = 1000
    )
        async throws(KlaviyoError) -> [JSONValue]
    {
        let request = Self.flowsRequest(status: status)
        let (flows, complete) = try await allPages(request, credential: credential, maxPages: maxPages)
        guard complete else {
            throw KlaviyoError(
                code: .invalidResponse, operationID: request.operationID,
                message: "more than \(maxPages) pages of flows", usedOAuth: credential.isOAuth)
        }
        return flows
    }

    /// Every `data` item of a collection, following `links.next` for at most `maxPages` pages; `complete` is
    /// false when pages were left.
    func allPages(
        _ first: KlaviyoRequest, credential: KlaviyoCredential, maxPages: Int
    ) async throws(KlaviyoError)
        -> (items: [JSONValue], complete: Bool)
    {
        var request = first
        var items: [JSONValue] = []
        for _ in 0..<maxPages {
            let response = try await send(request, credential: credential)
            guard let page = response.data?.arrayValue else {
                throw KlaviyoError(
                    code: .invalidResponse, status: response.status, operationID: request.operationID,
                    message: "response has no data array", usedOAuth: credential.isOAuth)
            }
            items += page
            guard let next = response.document?["links"]?["next"]?.stringValue, !next.isEmpty else {
                return (items, true)
            }
            guard let nextRequest = Self.request(following: next, like: request) else {
                throw KlaviyoError(
                    code: .invalidResponse, status: response.status, operationID: request.operationID,
                    message: "links.next is not a URL below /api/", usedOAuth: credential.isOAuth)
            }
            request = nextRequest
        }
        return (items, false)
    }

    /// The request a `links.next` URL names: same operation, the link's path and (decoded) query.
    static func request(following link: String, like request: KlaviyoRequest) -> KlaviyoRequest? {
        guard let apiRange = link.range(of: "/api/") else { return nil }
        let rest = link[apiRange.lowerBound...]
        let parts = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [(name: String, value: String)] = []
        if parts.count == 2 {
            for item in parts[1].split(separator: "&") where !item.isEmpty {
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = percentDecode(pair[0]) else { return nil }
                let value = pair.count == 2 ? percentDecode(pair[1]) : ""
                guard let value else { return nil }
                query.append((name, value))
            }
        }
        return KlaviyoRequest(
            operationID: request.operationID, method: request.method, path: String(parts[0]), query: query,
            isIdempotent: request.isIdempotent)
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            default: return nil
            }
        }
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hex), let low = iterator.next().flatMap(hex) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The request for `PATCH /api/flows/{id}` (update_flow): status `draft`, `manual` or `live`.
    public static func updateFlowStatusRequest(id: String, status: String) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "update_flow", method: "PATCH", path: "/api/flows/\(KlaviyoRequest.percentEncode(id))",
            body: ["data": ["type": "flow", "id": .string(id), "attributes": ["status": .string(status)]]],
            isIdempotent: true)
    }

    /// Sets a flow's status; returns the flow resource.
    public func updateFlowStatus(
        id: String, status: String, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> JSONValue
    {
        let request = Self.updateFlowStatusRequest(id: id, status: status)
        let response = try await send(request, credential: credential)
        guard let data = response.data, data["id"]?.stringValue != nil else {
            throw KlaviyoError(
                code: .invalidResponse, status: response.status, operationID: request.operationID,
                message: "response has no flow resource", usedOAuth: credential.isOAuth)
        }
        return data
    }
}
