import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A small real HTTP/1.1 server for tests: POSIX sockets on 127.0.0.1, an ephemeral port, a thread per
/// connection, keep-alive, TCP_NODELAY, one write per response.
///
/// Routes: `/echo`, `/status/<n>`, `/delay/<ms>`, `/reset`, `/big/<bytes>`, `/headers`, `/continue`.
final class TestHTTPServer: Sendable {
    struct Stats: Sendable {
        var acceptedConnections = 0
        var requests = 0
        var inFlight = 0
        var maxInFlight = 0
    }

    let port: Int
    private let listener: Int32
    private let stats = Mutex(Stats())

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerError("socket failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 1024) == 0 else {
            close(fd)
            throw ServerError("bind/listen failed")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { self.acceptLoop() }
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    var snapshot: Stats { stats.withLock { $0 } }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            stats.withLock { $0.acceptedConnections += 1 }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            Thread.detachNewThread { self.serve(client) }
        }
    }

    private struct Request {
        var method: String
        var path: String
        var headers: [(String, String)]
        var body: [UInt8]
    }

    private func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        defer { close(fd) }
        while true {
            // Read the head.
            var headEnd: Int?
            while true {
                if let end = Self.find([13, 10, 13, 10], in: buffer) {
                    headEnd = end
                    break
                }
                // Not HTTP (e.g. a TLS ClientHello): answer 400 and close.
                if let first = buffer.first, !(65...90).contains(first) {
                    writeAll(
                        fd, Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
                    return
                }
                guard readMore(fd, into: &buffer) else { return }
            }
            guard let headEnd else { return }
            let head = String(decoding: buffer[..<headEnd], as: UTF8.self)
            buffer.removeFirst(headEnd + 4)
            var lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.removeFirst().split(separator: " ")
            guard requestLine.count >= 2 else { return }
            var headers: [(String, String)] = []
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.append(
                    (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            let contentLength = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
            while buffer.count < contentLength {
                guard readMore(fd, into: &buffer) else { return }
            }
            let body = Array(buffer[..<contentLength])
            buffer.removeFirst(contentLength)
            let request = Request(
                method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, body: body)

            stats.withLock { stats in
                stats.requests += 1
                stats.inFlight += 1
                stats.maxInFlight = max(stats.maxInFlight, stats.inFlight)
            }
            let response = handle(request)
            stats.withLock { $0.inFlight -= 1 }
            guard let response else {
                // /reset: SO_LINGER 0 turns close() into a TCP RST.
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                return
            }
            guard writeAll(fd, response) else { return }
            if request.headers.contains(where: { $0.0.lowercased() == "connection" && $0.1.lowercased() == "close" }) {
                return
            }
        }
    }

    /// The serialized response, or `nil` to reset the connection.
    private func handle(_ request: Request) -> [UInt8]? {
        let parts = request.path.split(separator: "/").map(String.init)
        var status = 200
        var extraHeaders: [(String, String)] = []
        var body: [UInt8] = []
        switch parts.first {
        case "echo":
            let object: [String: Any] = [
                "method": request.method,
                "path": request.path,
                "headers": request.headers.map { [$0.0, $0.1] },
                "body": String(decoding: request.body, as: UTF8.self),
            ]
            body = Array((try? JSONSerialization.data(withJSONObject: object)) ?? Data())
            extraHeaders.append(("Content-Type", "application/json"))
        case "status":
            status = parts.count > 1 ? Int(parts[1]) ?? 500 : 500
            body = Array("status \(status)".utf8)
        case "delay":
            let milliseconds = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            usleep(UInt32(milliseconds) * 1000)
            body = Array("delayed \(milliseconds)".utf8)
        case "reset":
            return nil
        case "big":
            let count = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            body = [UInt8](repeating: UInt8(ascii: "x"), count: count)
        case "continue":
            // An interim 100 block first: the client must keep only the final block's headers.
            let interim = "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
            body = Array("final".utf8)
            extraHeaders.append(("X-Final", "yes"))
            let final = "HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\nX-Final: yes\r\n\r\n"
            return Array((interim + final).utf8) + body
        case "headers":
            extraHeaders += [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Multi", "one"), ("X-Multi", "two")]
            body = Array("headers".utf8)
        default:
            status = 404
        }
        var head = "HTTP/1.1 \(status) Test\r\nContent-Length: \(body.count)\r\nConnection: keep-alive\r\n"
        for (name, value) in extraHeaders { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (request.method == "HEAD" ? [] : body)
    }

    private func readMore(_ fd: Int32, into buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        buffer.append(contentsOf: chunk[..<count])
        return true
    }

    @discardableResult
    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if Array(haystack[index..<index + needle.count]) == needle { return index }
        }
        return nil
    }
}

struct ServerError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
