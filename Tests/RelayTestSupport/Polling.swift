import Testing

/// Polls a condition until it holds (a bounded wait on observable state, never a blind sleep). On timeout it records
/// an issue and throws ``TimedOut``.
public func eventually(
    _ what: String, timeout: Duration, every interval: Duration = .milliseconds(25),
    _ condition: () async throws -> Bool
) async throws {
    guard try await waitUntil(timeout: timeout, every: interval, condition) else {
        Issue.record("timed out after \(timeout) waiting for \(what)")
        throw TimedOut(what: what)
    }
}

/// Polls until `condition` holds or `timeout` passes; answers whether it held (the condition is evaluated once more
/// at the deadline). For callers that report a timeout themselves (the hostile suite's FAIL rows).
public func waitUntil(
    timeout: Duration, every interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: interval)
    }
}

/// Waits `window` and answers whether `condition` stayed false the whole time, checked every `interval` (for "this
/// must not happen" assertions: fails at the first observation instead of after a blind sleep).
public func staysFalse(
    for window: Duration, every interval: Duration = .milliseconds(25), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let end = ContinuousClock.now + window
    while ContinuousClock.now < end {
        if try await condition() { return false }
        try? await Task.sleep(for: interval)
    }
    return try await !condition()
}
