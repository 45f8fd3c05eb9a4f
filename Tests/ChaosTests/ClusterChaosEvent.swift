import Foundation

/// One failure the cluster chaos test caused, and what it cost.
struct ClusterChaosEvent: Sendable {
    /// Which commands the failure affects most: all of them, one work queue's, or some accounts' (those whose hash
    /// slot lived on a killed Redis primary).
    enum Scope: Sendable {
        case all
        case queue(prefixes: [String])
        case accounts(Set<String>)

        func contains(_ plan: Planned) -> Bool {
            switch self {
            case .all: return true
            case .queue(let prefixes): return prefixes.contains { plan.type.hasPrefix($0) }
            case .accounts(let accounts): return accounts.contains(plan.account)
            }
        }

        var label: String {
            switch self {
            case .all: return "any command"
            case .queue(let prefixes): return prefixes.map { "\($0)*" }.joined(separator: "/") + " command"
            case .accounts(let accounts): return "command of its \(accounts.count) accounts"
            }
        }
    }

    var name: String
    /// Percent of the commands published when it began.
    var progress: Int
    /// When the stop, kill or start began.
    var startedAt: ContinuousClock.Instant
    /// When the failure was complete (a stopped node's port closed, a process killed): what the costs below are
    /// measured from.
    var effectiveAt: ContinuousClock.Instant
    var scope: Scope
    /// A failure (a node stopped, a process killed), as opposed to a recovery (a node started again): new commands
    /// must be served after a failure.
    var isFailure: Bool
    /// What was measured while it happened (leader moved, replica promoted, consumer reconnected, …).
    var notes: [String] = []

    init(
        name: String, progress: Int, startedAt: ContinuousClock.Instant, effectiveAt: ContinuousClock.Instant? = nil,
        scope: Scope, isFailure: Bool = true
    ) {
        self.name = name
        self.progress = progress
        self.startedAt = startedAt
        self.effectiveAt = effectiveAt ?? startedAt
        self.scope = scope
        self.isFailure = isFailure
    }

    /// How long the stop, kill or start itself took.
    var operation: Duration { effectiveAt - startedAt }

    /// The first outcome of a well-formed command in scope published (confirmed) after the failure was complete,
    /// counted from then: the time the failover cost new work. `published` and `arrivals` are by command id.
    func firstServed(
        planned: [String: Planned], published: [String: ContinuousClock.Instant],
        arrivals: [String: ContinuousClock.Instant]
    ) -> Duration? {
        var first: Duration?
        for (id, publishedAt) in published where publishedAt >= effectiveAt {
            guard let plan = planned[id], plan.malformedCode == nil, scope.contains(plan),
                let arrival = arrivals[id]
            else { continue }
            let cost = arrival - effectiveAt
            if first.map({ cost < $0 }) ?? true { first = cost }
        }
        return first
    }

    /// The longest time without any outcome arriving within `window` after the failure was complete (from then to the
    /// first outcome, or between two outcomes); the whole window when none arrived.
    func longestGap(arrivals: [ContinuousClock.Instant], window: Duration) -> Duration {
        let end = effectiveAt + window
        var previous = effectiveAt
        var longest = Duration.zero
        for arrival in arrivals.sorted() where arrival > effectiveAt && arrival <= end {
            longest = max(longest, arrival - previous)
            previous = arrival
        }
        return previous == effectiveAt ? window : longest
    }
}
