import Foundation
import HTTPClient
import Logging
import Testing

#if canImport(Glibc)
    import Glibc
#endif

private let logger: Logger = {
    var logger = Logger(label: "http-tests")
    logger.logLevel = .warning
    return logger
}()

private struct Echo {
    let method: String
    let headers: [(String, String)]
    let body: String

    init(_ response: HTTPResponse) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        method = try #require(object["method"] as? String)
        body = try #require(object["body"] as? String)
        let pairs = try #require(object["headers"] as? [[String]])
        headers = pairs.map { ($0[0], $0[1]) }
    }

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

@Suite("HTTPClient against a local HTTP/1.1 server")
struct HTTPClientTests {
    @Test func methodsAndBodiesEcho() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }

        let get = try await client.execute(HTTPRequest(url: server.baseURL + "/echo", headers: ["X-Trace": "abc"]))
        #expect(get.status == 200)
        #expect(get.headers["content-type"] == "application/json")
        let getEcho = try Echo(get)
        #expect(getEcho.method == "GET")
        #expect(getEcho.header("x-trace") == "abc")
        #expect(getEcho.header("user-agent") == "klaviyo-relay")
        #expect(getEcho.body.isEmpty)

        for method in [HTTPMethod.POST, .PUT, .PATCH, .DELETE] {
            let payload = #"{"method":"\#(method.rawValue)","ünïcode":true}"#
            let response = try await client.execute(
                HTTPRequest(
                    method: method, url: server.baseURL + "/echo",
                    headers: ["Content-Type": "application/vnd.api+json", "Authorization": "Klaviyo-API-Key pk_x"],
                    body: Array(payload.utf8)))
            #expect(response.status == 200)
            let echo = try Echo(response)
            #expect(echo.method == method.rawValue)
            #expect(echo.body == payload)
            #expect(echo.header("content-type") == "application/vnd.api+json")
            #expect(echo.header("content-length") == String(payload.utf8.count))
            #expect(echo.header("expect") == nil)
            #expect(echo.header("authorization") == "Klaviyo-API-Key pk_x")
        }

        // A POST without a body type gets no implicit form content type; an empty body is sent as such.
        let empty = try Echo(try await client.execute(HTTPRequest(method: .POST, url: server.baseURL + "/echo")))
        #expect(empty.method == "POST" && empty.body.isEmpty)
        #expect(empty.header("content-type") == nil)
        #expect(empty.header("content-length") == "0")

        let head = try await client.execute(HTTPRequest(method: .HEAD, url: server.baseURL + "/big/100"))
        #expect(head.status == 200 && head.body.isEmpty && head.headers["Content-Length"] == "100")
    }

    @Test func nonSuccessStatusIsAResponse() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        for status in [201, 204, 301, 400, 404, 429, 500, 503] {
            let response = try await client.execute(HTTPRequest(url: server.baseURL + "/status/\(status)"))
            #expect(response.status == status)
        }
    }

    @Test func repeatedHeadersAreKeptInOrder() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        let response = try await client.execute(HTTPRequest(url: server.baseURL + "/headers"))
        #expect(response.headers.values(for: "set-cookie") == ["a=1", "b=2"])
        #expect(response.headers.values(for: "X-MULTI") == ["one", "two"])
        #expect(response.headers["x-multi"] == "one")
        #expect(!response.headers.contains { $0.name.hasPrefix("HTTP/") })
    }

    @Test func interimResponsesAreDropped() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        let response = try await client.execute(
            HTTPRequest(method: .POST, url: server.baseURL + "/continue", body: [1]))
        #expect(response.status == 200)
        #expect(response.bodyString == "final")
        #expect(response.headers["x-final"] == "yes")
        #expect(response.headers["x-interim"] == nil)
    }

    @Test func twoHundredConcurrentRequestsOverlap() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<200 {
                group.addTask { try await client.execute(HTTPRequest(url: server.baseURL + "/delay/200")).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.count == 200 && statuses.allSatisfy { $0 == 200 })
        let stats = server.snapshot
        #expect(stats.maxInFlight >= 50, "max in flight: \(stats.maxInFlight)")
        #expect(stats.acceptedConnections <= 64, "connections: \(stats.acceptedConnections)")
    }

    @Test func sequentialRequestsReuseTheConnection() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        for i in 0..<100 {
            let response = try await client.execute(
                HTTPRequest(
                    method: i.isMultiple(of: 2) ? .GET : .POST, url: server.baseURL + "/echo",
                    body: i.isMultiple(of: 2) ? nil : [1, 2, 3]))
            #expect(response.status == 200)
        }
        #expect(server.snapshot.acceptedConnections <= 2, "connections: \(server.snapshot.acceptedConnections)")
        #expect(server.snapshot.requests == 100)
    }

    @Test func eachRequestSendsExactlyItsOwnHeaders() async throws {
        // Sequential requests reuse one easy handle and the buffer its header list lives in: a long list, then a
        // shorter one, then a longer one again must each arrive whole, with nothing left over from the one before.
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        let lists: [[(name: String, value: String)]] = [
            (0..<12).map { (name: "X-Long-\($0)", value: String(repeating: "v\($0)", count: 40)) },
            [(name: "X-Short", value: "s")],
            [],
            (0..<30).map { (name: "X-Many-\($0)", value: "\($0)") } + [(name: "X-Empty", value: "")],
        ]
        for headers in lists + lists {
            let response = try await client.execute(
                HTTPRequest(url: server.baseURL + "/echo", headers: HTTPHeaders(headers)))
            let echo = try Echo(response)
            let sent = echo.headers.filter { $0.0.lowercased().hasPrefix("x-") }
            #expect(sent.map(\.0.localizedLowercase) == headers.map(\.name.localizedLowercase))
            #expect(sent.map(\.1) == headers.map(\.value))
        }
        #expect(server.snapshot.acceptedConnections == 1)
    }

    @Test func requestTimeout() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(configuration: .init(requestTimeout: .seconds(10)), logger: logger)
        defer { Task { await client.shutdown() } }
        do {
            _ = try await client.execute(HTTPRequest(url: server.baseURL + "/delay/3000", timeout: .milliseconds(300)))
            Issue.record("must time out")
        } catch let error as HTTPClientError {
            #expect(error.code == .timeout, "\(error)")
            #expect(error.isRetriable)
            #expect(error.requestMayHaveBeenSent)
        }
    }

    @Test func closedPortCannotConnect() async throws {
        let port = try Self.closedPort()
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        do {
            _ = try await client.execute(HTTPRequest(method: .POST, url: "http://127.0.0.1:\(port)/x", body: [1]))
            Issue.record("nothing listens there")
        } catch let error as HTTPClientError {
            #expect(error.code == .couldNotConnect, "\(error)")
            #expect(error.isRetriable)
            #expect(error.requestMayHaveBeenSent == false)
            #expect(error.curlCode == 7)
        }
    }

    @Test func connectTimeoutWhenTheAcceptQueueIsFull() async throws {
        // A listener that never accepts, with its (tiny) accept queue filled: further SYNs are dropped, so the
        // TCP handshake never completes. All on loopback.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, size) }
        }
        #expect(listen(listener, 0) == 0)
        var length = size
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        var fillers: [Int32] = []
        defer { for filler in fillers { close(filler) } }
        for _ in 0..<4 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) }
            }
            fillers.append(fd)
        }
        let port = Int(UInt16(bigEndian: address.sin_port))

        let client = HTTPClient(configuration: .init(connectTimeout: .milliseconds(300)), logger: logger)
        defer { Task { await client.shutdown() } }
        do {
            _ = try await client.execute(HTTPRequest(method: .POST, url: "http://127.0.0.1:\(port)/x", body: [1]))
            Issue.record("the handshake cannot complete")
        } catch let error as HTTPClientError {
            #expect(error.code == .connectTimeout, "\(error)")
            #expect(error.isRetriable)
            #expect(error.requestMayHaveBeenSent == false)
        }
    }

    @Test func connectionResetByPeer() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        do {
            _ = try await client.execute(HTTPRequest(url: server.baseURL + "/reset"))
            Issue.record("the server resets the connection")
        } catch let error as HTTPClientError {
            #expect(error.code == .connectionReset, "\(error)")
            #expect(error.isRetriable)
            #expect(error.requestMayHaveBeenSent)
        }
        // The client is still healthy.
        #expect(try await client.execute(HTTPRequest(url: server.baseURL + "/status/204")).status == 204)
    }

    @Test func responseTooLarge() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(configuration: .init(maxResponseBodyBytes: 1_000), logger: logger)
        defer { Task { await client.shutdown() } }
        #expect(try await client.execute(HTTPRequest(url: server.baseURL + "/big/1000")).body.count == 1_000)
        do {
            _ = try await client.execute(HTTPRequest(url: server.baseURL + "/big/5000"))
            Issue.record("the body is over the limit")
        } catch let error as HTTPClientError {
            #expect(error.code == .responseTooLarge, "\(error)")
            #expect(!error.isRetriable)
        }
        let big = try await HTTPClient(logger: logger).execute(HTTPRequest(url: server.baseURL + "/big/3000000"))
        #expect(big.body.count == 3_000_000)
    }

    @Test func cancellationAbortsTheTransfer() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        let task = Task { try await client.execute(HTTPRequest(url: server.baseURL + "/delay/5000")) }
        // Cancel once the server is holding the request.
        while server.snapshot.inFlight == 0 { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        let result = await task.result
        #expect(throws: HTTPClientError.self) { try result.get() }
        if case .failure(let error as HTTPClientError) = result {
            #expect(error.code == .cancelled)
            #expect(error.requestMayHaveBeenSent)  // the server was already sleeping on it
        }

        // Already-cancelled tasks fail without sending.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await client.execute(HTTPRequest(url: server.baseURL + "/delay/5000"))
        }
        if case .failure(let error as HTTPClientError) = await early.result {
            #expect(error.code == .cancelled)
            #expect(error.requestMayHaveBeenSent == false)
        } else {
            Issue.record("expected .cancelled")
        }
        #expect(try await client.execute(HTTPRequest(url: server.baseURL + "/status/200")).status == 200)
    }

    @Test func httpsVerificationIsOnByDefaultAndFailsAgainstAPlainServer() async throws {
        #expect(HTTPClientConfiguration().verifyTLS)
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        do {
            _ = try await client.execute(
                HTTPRequest(url: "https://127.0.0.1:\(server.port)/echo", timeout: .seconds(5)))
            Issue.record("there is no TLS server")
        } catch let error as HTTPClientError {
            #expect(error.code == .tls, "\(error)")
            #expect(!error.isRetriable)
        }
    }

    @Test func invalidURLAndShutdown() async throws {
        let client = HTTPClient(logger: logger)
        for url in ["ftp://127.0.0.1/x", "not a url", "http://"] {
            do {
                _ = try await client.execute(HTTPRequest(url: url))
                Issue.record("\(url) is invalid")
            } catch let error as HTTPClientError {
                #expect(error.code == .invalidURL || error.code == .couldNotConnect, "\(url): \(error)")
                #expect(error.requestMayHaveBeenSent == false)
            }
        }
        await client.shutdown()
        do {
            _ = try await client.execute(HTTPRequest(url: "http://127.0.0.1:1/"))
            Issue.record("shut down")
        } catch let error as HTTPClientError {
            #expect(error.code == .shutdown)
        }
    }

    @Test func serviceRunShutsTheClientDownWhenCancelled() async throws {
        let client = HTTPClient(logger: logger)
        let service = Task { try await client.run() }
        service.cancel()
        try await service.value
        do {
            _ = try await client.execute(HTTPRequest(url: "http://127.0.0.1:1/"))
            Issue.record("the service stopped the client")
        } catch let error as HTTPClientError {
            #expect(error.code == .shutdown)
            #expect(error.requestMayHaveBeenSent == false)
        }
    }

    @Test func headersAreCaseInsensitiveAndOrdered() {
        var headers: HTTPHeaders = ["Retry-After": "3", "X-A": "1"]
        headers.add(name: "x-a", value: "2")
        #expect(headers["retry-after"] == "3")
        #expect(headers.values(for: "X-A") == ["1", "2"])
        #expect(headers.map(\.name) == ["Retry-After", "X-A", "x-a"])
        headers.replaceOrAdd(name: "X-A", value: "3")
        #expect(headers.values(for: "x-a") == ["3"])
        headers.remove(name: "RETRY-AFTER")
        #expect(headers["Retry-After"] == nil && headers.count == 1)
    }

    /// A port nothing listens on: bound, never listened to, closed.
    static func closedPort() throws -> Int {
        let server = try TestHTTPServer()
        let port = server.port
        server.stop()
        return port
    }
}
