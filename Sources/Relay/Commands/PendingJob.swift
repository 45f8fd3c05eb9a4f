public import Klaviyo

/// A Klaviyo job (bulk import, campaign send) that is still running.
public struct PendingJob: Sendable, Hashable {
    /// What the next attempt needs (`job_id`, `polls`, `submitted_at`); stored in Redis (`kr:job:<command id>`).
    public var state: JSONValue
    /// When to look again.
    public var pollAfter: Duration

    /// Creates a pending job.
    public init(state: JSONValue, pollAfter: Duration) {
        self.state = state
        self.pollAfter = pollAfter
    }

    /// The state after submitting job `jobID`.
    public static func submitted(jobID: String) -> PendingJob {
        PendingJob(
            state: ["job_id": .string(jobID), "polls": 0, "submitted_at": .string(Timestamp.now())],
            pollAfter: pollDelay(polls: 0))
    }

    /// The same job after one more poll that found it unfinished.
    public static func polledAgain(_ state: JSONValue) -> PendingJob {
        var members = state.objectValue ?? [:]
        // Saturating: the count comes back from Redis, where a corrupt value must not trap the process.
        let polls = Clamp.sum(members["polls"]?.jobInteger ?? 0, 1)
        members["polls"] = .int(polls)
        return PendingJob(state: .object(members), pollAfter: pollDelay(polls: Int(polls)))
    }

    /// Polls back off: three after 1 s, then every 5 s up to the tenth, then every 30 s. One job's polls
    /// stay far below the job endpoints' rate tier (M: 10/s burst, 150/m steady); a 429 goes through the
    /// usual `Retry-After` path.
    public static func pollDelay(polls: Int) -> Duration {
        polls < 3 ? .seconds(1) : polls < 10 ? .seconds(5) : .seconds(30)
    }
}
