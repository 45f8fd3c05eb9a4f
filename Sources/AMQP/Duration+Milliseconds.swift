extension Duration {
    /// Whole milliseconds (truncated), e.g. for `poll(2)` timeouts.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
