public import Klaviyo

/// A value of a RabbitMQ policy definition (or, prefixed with `x-`, of a queue argument): the relay's are
/// strings and whole numbers.
public enum PolicyValue: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// A string, e.g. an exchange name.
    case string(String)
    /// A whole number, e.g. a TTL in milliseconds.
    case int(Int64)

    /// Creates a string value.
    public init(stringLiteral value: String) { self = .string(value) }

    /// The JSON value (as the management API and the definitions file write it).
    public var json: JSONValue {
        switch self {
        case .string(let text): return .string(text)
        case .int(let number): return .int(number)
        }
    }

    /// Whether `json` (from the management API) is this value.
    public func matches(_ json: JSONValue) -> Bool {
        switch (self, json) {
        case (.string(let want), .string(let have)): return want == have
        case (.int(let want), .int(let have)): return want == have
        case (.int(let want), .double(let have)): return Double(want) == have
        default: return false
        }
    }

    /// `klaviyo.dead` or `10`.
    public var description: String {
        switch self {
        case .string(let text): return text
        case .int(let number): return String(number)
        }
    }
}

extension RelayTopology {
    /// A RabbitMQ policy of the topology (``Mode/policies``): what `klaviyo-relay setup` applies, what
    /// `deploy/rabbitmq/definitions.json` holds and what `consume` requires to be in force.
    public struct Policy: Sendable, Hashable {
        /// What a policy applies to (its `apply-to`).
        public enum Target: String, Sendable, Hashable {
            /// Queues.
            case queues
            /// Exchanges.
            case exchanges
        }

        /// `<prefix>-…`.
        public var name: String
        /// An anchored regular expression naming exactly ``covers`` (`^klaviyo\.retry\.1s$`).
        public var pattern: String
        /// Queues or exchanges.
        public var applyTo: Target
        /// The keys and values, in the order the definitions file lists them.
        public var definition: [Setting]
        /// The policy's priority (``RelayTopology/policyPriority``).
        public var priority: Int
        /// The queues or exchanges the policy is for.
        public var covers: [String]
        /// Keys whose value in force may differ from ``definition`` (an operator may raise the dead queue's bound
        /// with a policy of higher priority); the key itself must still be in force.
        public var adjustableKeys: Set<String> = []

        /// One key and value of ``definition``.
        public struct Setting: Sendable, Hashable {
            /// The policy key, e.g. `dead-letter-exchange`.
            public var key: String
            /// Its value.
            public var value: PolicyValue
        }

        /// The definition as a JSON object.
        public var definitionJSON: JSONValue {
            .object(Dictionary(uniqueKeysWithValues: definition.map { ($0.key, $0.value.json) }))
        }
    }

    /// The priority of the relay's policies: above a vhost's catch-all policies at the default 0 (only one policy
    /// applies to a queue, the highest priority's). To override one (e.g. a larger dead queue bound), use a higher
    /// priority and repeat every key: `consume` refuses to start when a key it needs is not in force.
    public static let policyPriority = 10

    /// The dead queue's bound (the `<prefix>-dead-bound` policy's `max-length`); `overflow: reject-publish` past it.
    public static let deadQueueBound: Int64 = 1_000_000

    /// The work queues' settings (policy keys; as `x-` arguments in ``Mode/arguments`` mode).
    var workQueueSettings: [(key: String, value: PolicyValue)] {
        [
            ("delivery-limit", .int(Int64(deliveryLimit))), ("dead-letter-exchange", .string(deadExchange)),
            ("dead-letter-strategy", "at-least-once"), ("overflow", "reject-publish"),
        ]
    }

    /// A retry tier's settings: its TTL, then back to the commands exchange, at least once.
    func retryQueueSettings(_ tier: RetryTier) -> [(key: String, value: PolicyValue)] {
        [
            ("message-ttl", .int(tier.delay.wholeMilliseconds)), ("dead-letter-exchange", .string(commandsExchange)),
            ("dead-letter-strategy", "at-least-once"), ("overflow", "reject-publish"),
        ]
    }

    /// Every policy of the topology, one per queue or exchange that needs settings (the work queues share one):
    /// the work queues (delivery limit, dead-lettering into the dead exchange), each retry tier (TTL, dead-lettering
    /// back to the commands exchange), the dead queue's bound (`<prefix>-dead-bound`) and the commands exchange's
    /// alternate exchange. Queues dead-letter `at-least-once`, which needs `overflow: reject-publish`.
    public var policies: [Policy] {
        func policy(
            _ name: String, _ targets: [String], _ applyTo: Policy.Target,
            _ settings: [(key: String, value: PolicyValue)]
        ) -> Policy {
            let names = targets.map(Self.regexEscaped)
            let pattern = names.count == 1 ? "^\(names[0])$" : "^(\(names.joined(separator: "|")))$"
            return Policy(
                name: "\(prefix)-\(name)", pattern: pattern, applyTo: applyTo,
                definition: settings.map { .init(key: $0.key, value: $0.value) }, priority: Self.policyPriority,
                covers: targets)
        }
        var policies = [
            policy("work-queues", RelayQueue.allCases.map(queueName), .queues, workQueueSettings)
        ]
        for tier in retryTiers {
            policies.append(
                policy("retry-\(tier.name)", [retryQueueName(tier.name)], .queues, retryQueueSettings(tier)))
        }
        var deadSettings: [(key: String, value: PolicyValue)] = [
            ("max-length", .int(Self.deadQueueBound)), ("overflow", "reject-publish"),
        ]
        if unlimitedDeadDeliveries { deadSettings.append(("delivery-limit", .int(-1))) }
        var dead = policy("dead-bound", [deadQueue], .queues, deadSettings)
        dead.adjustableKeys = ["max-length"]
        policies.append(dead)
        policies.append(
            policy(
                "commands-exchange", [commandsExchange], .exchanges,
                [("alternate-exchange", .string(unroutableExchange))]))
        return policies
    }

    /// `text` as a literal in a regular expression: every character but ASCII letters, digits and `_` is
    /// escaped (`klaviyo.retry` → `klaviyo\.retry`).
    static func regexEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character.isASCII && (character.isLetter || character.isNumber || character == "_") {
                escaped.append(character)
            } else if character.isASCII {
                escaped.append("\\")
                escaped.append(character)
            } else {
                escaped.append(character)
            }
        }
        return escaped
    }
}

/// A key the topology needs that is not in force on a queue or exchange (``RelayTopology/policyProblems(queues:exchanges:policies:)``).
public struct PolicyProblem: Sendable, Hashable, CustomStringConvertible {
    /// `queue` or `exchange`.
    public var kind: RelayTopology.Policy.Target
    /// The queue or exchange.
    public var name: String
    /// The relay's policy that sets the key.
    public var policy: String
    /// The policy in force on it, if any.
    public var inForce: String?
    /// The key; nil when the queue or exchange does not exist.
    public var key: String?
    /// The value the topology needs.
    public var wanted: PolicyValue?
    /// The value in force, if any.
    public var found: JSONValue?

    /// One line naming the queue or exchange, the key and what to do.
    public var description: String {
        let what = "\(kind == .queues ? "queue" : "exchange") \(name)"
        guard let key, let wanted else {
            return "\(what) does not exist (run `klaviyo-relay setup`)"
        }
        guard let inForce else {
            return "\(what) has no policy in force: \(key) is missing (policy \(policy) sets \(key) = \(wanted))"
        }
        guard let found else {
            return "\(what): its policy \(inForce) has no \(key) (policy \(policy) sets \(key) = \(wanted))"
        }
        return "\(what): its policy \(inForce) sets \(key) = \(Self.text(found)), the relay needs \(wanted)"
    }

    /// The problems in one line per queue or exchange: each key missing or wrong, with the value it needs.
    public static func summary(_ problems: [PolicyProblem]) -> String {
        var order: [String] = []
        var byTarget: [String: [PolicyProblem]] = [:]
        for problem in problems {
            let target = "\(problem.kind == .queues ? "queue" : "exchange") \(problem.name)"
            if byTarget[target] == nil { order.append(target) }
            byTarget[target, default: []].append(problem)
        }
        return order.map { target in
            let problems = byTarget[target] ?? []
            let first = problems[0]
            if first.key == nil { return first.description }
            let keys = problems.compactMap { problem in
                problem.key.map { key in
                    "\(key) = \(problem.wanted.map(\.description) ?? "?")"
                        + (problem.found.map { " (has \(Self.text($0)))" } ?? "")
                }
            }
            let state = first.inForce.map { "its policy \($0) lacks" } ?? "has no policy in force, so it lacks"
            return "\(target) \(state) \(keys.joined(separator: ", ")) (policy \(first.policy) sets them)"
        }.joined(separator: "; ")
    }

    private static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return text
        default: return String(decoding: JSONSerializer.serialize(value), as: UTF8.self)
        }
    }
}

extension RelayTopology {
    /// What is missing for ``policies`` to be in force, given the management API's answers: `queues` maps each
    /// queue name to `GET /api/queues/<vhost>/<name>` (absent: 404), `exchanges` each exchange name to
    /// `GET /api/exchanges/<vhost>/<name>`, `policies` is `GET /api/policies/<vhost>`. A queue's definition in
    /// force is its `effective_policy_definition`; an exchange's, the definition of the policy its `policy`
    /// names. A policy the answer names that is not in `policies` counts as none (the management API reports a
    /// queue's policy with a delay of up to its statistics interval, 5 s by default). Empty: all in force.
    public func policyProblems(
        queues: [String: JSONValue], exchanges: [String: JSONValue], policies listed: JSONValue
    ) -> [PolicyProblem] {
        var definitions: [String: JSONValue] = [:]
        for policy in listed.arrayValue ?? [] {
            if let name = policy["name"]?.stringValue, let definition = policy["definition"] {
                definitions[name] = definition
            }
        }
        var problems: [PolicyProblem] = []
        for policy in policies {
            for name in policy.covers {
                let answer = policy.applyTo == .queues ? queues[name] : exchanges[name]
                guard let answer, answer.objectValue != nil else {
                    problems.append(.init(kind: policy.applyTo, name: name, policy: policy.name))
                    continue
                }
                var inForce = answer["policy"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
                if let named = inForce, definitions[named] == nil { inForce = nil }
                var effective: [String: JSONValue] = [:]
                if let inForce {
                    effective =
                        answer["effective_policy_definition"]?.objectValue ?? definitions[inForce]?.objectValue ?? [:]
                }
                for setting in policy.definition {
                    let found = effective[setting.key]
                    if let found, policy.adjustableKeys.contains(setting.key) || setting.value.matches(found) {
                        continue
                    }
                    problems.append(
                        .init(
                            kind: policy.applyTo, name: name, policy: policy.name, inForce: inForce, key: setting.key,
                            wanted: setting.value, found: found))
                }
            }
        }
        return problems
    }
}
