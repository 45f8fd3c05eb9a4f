/// What a command did at Klaviyo: the outcome to report.
public struct CommandExecution: Sendable, Hashable {
    /// `succeeded` or a definitive `failed`.
    public var outcome: CommandResult.Outcome
    /// Klaviyo's answer.
    public var klaviyo: CommandResult.KlaviyoOutcome
    /// Why it failed, for `failed`.
    public var failure: CommandResult.Failure?
    /// Set when a Klaviyo job was submitted or polled and is not finished: no result yet; the processor
    /// records `pending.state` and polls again later through a delay tier.
    public var pending: PendingJob?

    /// Creates an execution.
    public init(
        outcome: CommandResult.Outcome, klaviyo: CommandResult.KlaviyoOutcome, failure: CommandResult.Failure? = nil,
        pending: PendingJob? = nil
    ) {
        self.outcome = outcome
        self.klaviyo = klaviyo
        self.failure = failure
        self.pending = pending
    }
}
