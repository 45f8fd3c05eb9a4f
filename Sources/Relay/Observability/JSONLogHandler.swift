import Klaviyo
public import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A swift-log handler writing one JSON object per line to standard error (production log format).
///
/// Fields: `ts`, `level`, `msg`, `logger`, then the metadata keys. Values are strings.
public struct JSONLogHandler: LogHandler {
    /// Minimum level.
    public var logLevel: Logger.Level
    /// Handler metadata.
    public var metadata: Logger.Metadata = [:]
    let label: String

    /// Creates a handler.
    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    /// Handler metadata access.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one line.
    public func log(event: LogEvent) {
        var object: [String: JSONValue] = [
            "ts": .string(Timestamp.now()), "level": .string(event.level.rawValue), "msg": .string("\(event.message)"),
            "logger": .string(label),
        ]
        for (key, value) in metadata { object[key] = .string("\(value)") }
        if let extra = event.metadata {
            for (key, value) in extra { object[key] = .string("\(value)") }
        }
        var line = JSONValue.object(object).jsonBytes()
        line.append(0x0A)
        line.withUnsafeBytes { buffer in
            _ = fwrite(buffer.baseAddress, 1, buffer.count, stderrStream())
        }
    }
}

/// The process's standard-error `FILE*` (Swift 6 forbids touching the global `stderr` variable directly).
func stderrStream() -> UnsafeMutablePointer<FILE> {
    fdopenStderr.stream
}

private final class StderrBox: @unchecked Sendable {
    // Safe: the FILE* is created once and stdio serialises writes internally.
    let stream: UnsafeMutablePointer<FILE>
    init() {
        stream = fdopen(2, "a")
        setvbuf(stream, nil, _IOLBF, 0)
    }
}

private let fdopenStderr = StderrBox()

/// Installs the process-wide logging backend: JSON lines or text, at a level.
public enum RelayLogging {
    /// Bootstraps swift-log once per process.
    public static func bootstrap(format: String, level: String) {
        let logLevel = Logger.Level(rawValue: level.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            if format == "json" {
                return JSONLogHandler(label: label, level: logLevel)
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
    }
}
