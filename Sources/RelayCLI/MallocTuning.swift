#if canImport(Glibc)
    import Glibc
#endif

/// glibc gives threads that allocate at the same time their own malloc arenas (up to 8 per core), each holding
/// freed memory of its own. A consumer's threads (AMQP, Redis connections, curl, the Swift pool) all allocate
/// per command, so its resident memory grew with the arenas, not with the work: `relay-0ms` at concurrency 64,
/// three interleaved runs each, peaked at 49.3–50.3 MB with 16 arenas and 47.8–48.0 MB with two; CPU per command
/// 0.24–0.27 vs 0.24–0.31 ms, within the bench's noise on this 2-core machine. An operator's own
/// `MALLOC_ARENA_MAX` wins.
enum MallocTuning {
    /// Arenas a process keeps.
    static let arenas: Int32 = 2
    /// glibc's `M_ARENA_MAX` (malloc.h, which the Glibc module does not import).
    static let arenaMaxParameter: Int32 = -8

    /// Limits the arenas unless `MALLOC_ARENA_MAX` is set (through `dlsym`: `mallopt` is glibc's, not POSIX).
    static func limitArenas(environment: [String: String]) {
        #if canImport(Glibc)
            guard environment["MALLOC_ARENA_MAX"] == nil, let symbol = dlsym(nil, "mallopt") else { return }
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            _ = unsafeBitCast(symbol, to: Mallopt.self)(arenaMaxParameter, arenas)
        #endif
    }
}
