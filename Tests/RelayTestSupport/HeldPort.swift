#if canImport(Glibc)
    import Glibc
#endif

/// A TCP port held open (listening on all interfaces, nobody accepting) until released: a port no server can
/// take, or a peer that completes the handshake and never answers.
public struct HeldPort {
    /// The listening socket.
    public let descriptor: Int32
    /// The port it holds.
    public let port: Int

    /// Binds an ephemeral port and listens on it.
    public init() throws {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = INADDR_ANY
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) }
        }
        guard bound == 0, listen(socketFD, 1) == 0 else {
            close(socketFD)
            throw TimedOut(what: "a port to hold")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
        }
        descriptor = socketFD
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Closes the socket: the port is free again.
    public func release() { close(descriptor) }
}
