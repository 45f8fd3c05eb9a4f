#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A test-only crash point: the process kills itself with SIGKILL at a chosen stage of processing, to
/// prove that a crash at that moment loses nothing and duplicates nothing. Enabled only when
/// `RELAY_ENABLE_FAULT_INJECTION=1`.
public struct CrashPoint: Sendable, Hashable {
    /// Where in the processing of a command to crash.
    public enum Stage: String, Sendable, CaseIterable {
        /// Klaviyo answered; nothing recorded yet.
        case afterKlaviyoCall = "after_klaviyo_call"
        /// The result is recorded in Redis but not yet published.
        case afterResultRecorded = "after_result_recorded"
        /// The result is published, confirmed and marked published; the command is not yet acknowledged.
        case afterResultPublished = "after_result_published"
        /// The result is published and confirmed; its published mark is still queued (it rides along with a later
        /// Redis round trip) and the command is not yet acknowledged.
        case afterResultPublishedBeforeMark = "after_result_published_before_mark"
        /// Like `after_klaviyo_call`, for a command unpacked from a bundle (``AccountFairness``) only: the
        /// consumer dies while the bundle is unacked, which the broker then delivers again.
        case unpackedAfterKlaviyoCall = "unpacked_after_klaviyo_call"
        /// Klaviyo accepted a coalesced batch's bulk import job; its id is not recorded yet (``ProfileCoalescer``).
        case afterBulkSubmit = "after_bulk_submit"
    }

    /// The stage.
    public var stage: Stage
    /// Only crash on this command (nil: the first command to reach the stage).
    public var commandID: String?

    /// Creates a crash point.
    public init(stage: Stage, commandID: String?) {
        self.stage = stage
        self.commandID = commandID
    }

    /// Kills the process if this point matches.
    func trigger(_ stage: Stage, commandID: String) {
        guard stage == self.stage, self.commandID == nil || self.commandID == commandID else { return }
        kill(getpid(), SIGKILL)
    }
}
