/// A bounded wait (``eventually(_:timeout:every:_:)``) that ended before its condition held.
public struct TimedOut: Error, CustomStringConvertible {
    /// What was waited for.
    public var what: String

    /// A timeout waiting for `what`.
    public init(what: String) {
        self.what = what
    }

    /// `timed out waiting for <what>`.
    public var description: String { "timed out waiting for \(what)" }
}
