#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Checks, before the servers start, that a port the process will listen on is free, so a port already in use
/// is one line naming the setting to change instead of a `bind(...)` error from deep inside the HTTP server.
enum ListeningPort {
    /// Throws a one-line ``CLIError`` when `port` cannot be bound on all interfaces (as the servers bind it).
    /// Port 0 (any free port) is not checked.
    static func checkFree(_ port: Int, setting: String) throws {
        guard port > 0 else { return }
        switch bindError(port) {
        case nil: return
        case EADDRINUSE?: throw CLIError("port \(port) is in use: set \(setting) to a free port")
        case EACCES?:
            throw CLIError("port \(port) needs privileges this process lacks: set \(setting) to a port above 1023")
        case let code?:
            throw CLIError("cannot listen on port \(port) (\(String(cString: strerror(code)))): check \(setting)")
        }
    }

    /// The errno of binding `0.0.0.0:port` with `SO_REUSEADDR` (as SwiftNIO does), or nil when it worked.
    static func bindError(_ port: Int) -> Int32? {
        #if canImport(Glibc)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { return errno }
        defer { close(descriptor) }
        var reuse: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = INADDR_ANY
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0 ? nil : errno
    }
}
