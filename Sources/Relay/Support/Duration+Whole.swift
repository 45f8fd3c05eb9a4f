extension Duration {
    /// Whole milliseconds, saturating at `Int64.max`/`.min` (never traps, whatever the duration).
    var wholeMilliseconds: Int64 {
        let (scaled, overflow) = components.seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return components.seconds < 0 ? .min : .max }
        let (sum, carry) = scaled.addingReportingOverflow(components.attoseconds / 1_000_000_000_000_000)
        return carry ? (scaled < 0 ? .min : .max) : sum
    }

    /// Whole nanoseconds, saturating at `Int64.max`/`.min`.
    var nanoseconds: Int64 {
        let (scaled, overflow) = components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return components.seconds < 0 ? .min : .max }
        let (sum, carry) = scaled.addingReportingOverflow(components.attoseconds / 1_000_000_000)
        return carry ? (scaled < 0 ? .min : .max) : sum
    }
}
