import Foundation
import Logging
import Redis
import Testing

#if canImport(Glibc)
    import Glibc
#endif

enum RedisTestSupport {
    /// The shared Redis the suites talk to; tests fail (never skip) when it is unreachable.
    static var url: String {
        ProcessInfo.processInfo.environment["RELAY_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    }

    static var logger: Logger {
        var logger = Logger(label: "redis-tests")
        logger.logLevel = .warning
        return logger
    }

    static func makeClient(poolSize: Int = 8) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        configuration.poolSize = poolSize
        return RedisClient(configuration: configuration, logger: logger)
    }

    /// A key prefix unique to one test.
    static func prefix() -> String { "relay-test:\(UUID().uuidString):" }

    /// A port the kernel just handed out (bound to port 0 and released).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A loopback listener that never accepts and whose accept queue is full: connecting to it hangs (SYNs are
/// dropped), like a blackholed host, without leaving the machine.
final class SaturatedListener {
    let port: Int
    private var descriptors: [Int32] = []

    init() {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        descriptors.append(listener)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, size) }
        }
        listen(listener, 0)
        var length = size
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        for _ in 0..<4 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) }
            }
            descriptors.append(fd)
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { for descriptor in descriptors { close(descriptor) } }
}

/// A real, throwaway `redis-server` owned by one test: started, killed and restarted by it.
final class PrivateRedisServer: @unchecked Sendable {
    // @unchecked: used from one test at a time; `process` is only touched by that test's sequential code.
    let port: Int
    private var process: Process?

    init() throws {
        port = RedisTestSupport.freePort()
        try start()
    }

    deinit { kill() }

    var url: String { "redis://127.0.0.1:\(port)/0" }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--logfile", "/dev/null",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        // Wait until it accepts connections.
        for _ in 0..<100 {
            if canConnect() { return }
            usleep(50_000)
        }
        throw RedisError(code: .connectionFailed, message: "private redis-server did not start", isRetriable: false)
    }

    func kill() {
        guard let process else { return }
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        self.process = nil
    }

    private func canConnect() -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
