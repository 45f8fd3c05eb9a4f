import AMQP
import Foundation
import Klaviyo
import Testing

@testable import Relay

/// `RELAY_TOPOLOGY=policies` (issue #10): the policy set, the definitions file generated from it, the configuration
/// and the decision whether the policies the management API reports are the ones the topology needs.
@Suite("Topology policies")
struct TopologyPoliciesTests {
    static let prefixes = ["klaviyo", "staging-eu", "a.b_c", "test-3F2A"]

    /// Whether `policy`'s pattern matches `name` (the broker uses PCRE; these patterns use no construct in which it
    /// differs from ICU's regular expressions).
    func matches(_ policy: RelayTopology.Policy, _ name: String) throws -> Bool {
        let regex = try NSRegularExpression(pattern: policy.pattern)
        return regex.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
    }

    @Test(arguments: prefixes)
    func everyQueueAndTheCommandsExchangeHaveExactlyOnePolicy(prefix: String) throws {
        let topology = RelayTopology(prefix: prefix, mode: .policies)
        let policies = topology.policies
        #expect(Set(policies.map(\.name)).count == policies.count)
        for policy in policies {
            #expect(policy.name.hasPrefix("\(prefix)-"))
            #expect(policy.pattern.hasPrefix("^") && policy.pattern.hasSuffix("$"))
            #expect(policy.priority == RelayTopology.policyPriority)
        }
        for queue in topology.amqpTopology.queues {
            let covering = try policies.filter { try $0.applyTo == .queues && matches($0, queue.name) }
            #expect(covering.count == 1, "queue \(queue.name): \(covering.map(\.name))")
            #expect(covering.first?.covers.contains(queue.name) == true)
        }
        for exchange in topology.amqpTopology.exchanges {
            let covering = try policies.filter { try $0.applyTo == .exchanges && matches($0, exchange.name) }
            #expect(
                covering.map(\.name)
                    == (exchange.name == topology.commandsExchange ? ["\(prefix)-commands-exchange"] : []))
        }
        // Each policy names only what it covers: no queue or exchange of another prefix or a near miss.
        let strangers = [
            "other.profiles", "\(prefix).profiles2", "x\(prefix).events", "\(prefix)Xprofiles",
            "\(prefix).retry.1sX", "\(prefix).retryX1s", "\(prefix).retry.1", "\(prefix)-dead", "\(prefix).deadX",
            "\(prefix).commandsX", "\(prefix).results",
        ]
        for name in strangers {
            let covering = try policies.filter { try matches($0, name) }
            #expect(covering.isEmpty, "\(name) is matched by \(covering.map(\.name))")
        }
        // Another prefix's policies match none of this prefix's names.
        for other in Self.prefixes where other != prefix {
            for policy in RelayTopology(prefix: other).policies {
                for queue in topology.amqpTopology.queues { #expect(try !matches(policy, queue.name)) }
            }
        }
    }

    @Test func policiesCarryWhatTheArgumentsCarried() {
        let topology = RelayTopology(
            deliveryLimit: 7, retryTiers: [.init("2s", .seconds(2)), .init("250ms", .milliseconds(250))],
            mode: .policies)
        let byName = Dictionary(uniqueKeysWithValues: topology.policies.map { ($0.name, $0) })
        func definition(_ name: String) -> [String: PolicyValue] {
            Dictionary(uniqueKeysWithValues: byName[name]?.definition.map { ($0.key, $0.value) } ?? [])
        }
        #expect(
            definition("klaviyo-work-queues") == [
                "delivery-limit": .int(7), "dead-letter-exchange": "klaviyo.dead",
                "dead-letter-strategy": "at-least-once",
                "overflow": "reject-publish",
            ])
        #expect(byName["klaviyo-work-queues"]?.covers == RelayQueue.allCases.map(topology.queueName))
        for (tier, milliseconds) in [("250ms", Int64(250)), ("2s", 2000)] {
            #expect(
                definition("klaviyo-retry-\(tier)") == [
                    "message-ttl": .int(milliseconds), "dead-letter-exchange": "klaviyo.commands",
                    "dead-letter-strategy": "at-least-once", "overflow": "reject-publish",
                ])
            #expect(byName["klaviyo-retry-\(tier)"]?.pattern == "^klaviyo\\.retry\\.\(tier)$")
        }
        #expect(definition("klaviyo-dead-bound") == ["max-length": .int(1_000_000), "overflow": "reject-publish"])
        #expect(byName["klaviyo-dead-bound"]?.pattern == "^klaviyo\\.dead$")
        #expect(definition("klaviyo-commands-exchange") == ["alternate-exchange": "klaviyo.unroutable"])
        #expect(byName["klaviyo-commands-exchange"]?.applyTo == .exchanges)
        #expect(topology.policies.count == 1 + 2 + 1 + 1)
    }

    @Test func policiesModeDeclaresOnlyTheQueueType() {
        let policies = RelayTopology(mode: .policies).amqpTopology
        for queue in policies.queues {
            #expect(queue.arguments == ["x-queue-type": .string("quorum")], "\(queue.name)")
        }
        for exchange in policies.exchanges { #expect(exchange.arguments.isEmpty, "\(exchange.name)") }
        // Arguments mode declares what it always did.
        let arguments = RelayTopology().amqpTopology
        #expect(policies.bindings == arguments.bindings)
        #expect(policies.queues.map(\.name) == arguments.queues.map(\.name))
        let profiles = arguments.queues.first { $0.name == "klaviyo.profiles" }
        #expect(
            profiles?.arguments == [
                "x-queue-type": .string("quorum"), "x-delivery-limit": .int(10),
                "x-dead-letter-exchange": .string("klaviyo.dead"), "x-dead-letter-strategy": .string("at-least-once"),
                "x-overflow": .string("reject-publish"),
            ])
        let tier = arguments.queues.first { $0.name == "klaviyo.retry.2m" }
        #expect(
            tier?.arguments == [
                "x-queue-type": .string("quorum"), "x-message-ttl": .int(120_000),
                "x-dead-letter-exchange": .string("klaviyo.commands"),
                "x-dead-letter-strategy": .string("at-least-once"),
                "x-overflow": .string("reject-publish"),
            ])
        #expect(arguments.queues.first { $0.name == "klaviyo.dead" }?.arguments == ["x-queue-type": .string("quorum")])
        #expect(
            arguments.exchanges.first { $0.name == "klaviyo.commands" }?.arguments == [
                "alternate-exchange": .string("klaviyo.unroutable")
            ])
    }

    @Test func regexEscaping() {
        #expect(RelayTopology.regexEscaped("a.b-c_d9") == "a\\.b\\-c_d9")
        #expect(RelayTopology.regexEscaped("x+(y)|$^*?[]{}\\") == "x\\+\\(y\\)\\|\\$\\^\\*\\?\\[\\]\\{\\}\\\\")
    }

    /// deploy/rabbitmq/definitions.json is exactly what `klaviyo-relay setup --print-definitions` prints.
    @Test func committedDefinitionsAreTheGeneratorsOutput() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let committed = try String(
            contentsOf: root.appendingPathComponent("deploy/rabbitmq/definitions.json"), encoding: .utf8)
        let generated = RelayTopology(mode: .policies).definitionsJSON(vhost: "/")
        #expect(
            committed == generated,
            "deploy/rabbitmq/definitions.json differs from the generator: run `klaviyo-relay setup --print-definitions > deploy/rabbitmq/definitions.json`"
        )
        // And it is valid JSON with every policy.
        let parsed = try JSONParser().parse(Array(generated.utf8))
        #expect(parsed["policies"]?.arrayValue?.count == RelayTopology().policies.count)
        #expect(parsed["queues"]?.arrayValue?.count == 11)
    }

    @Test func argumentsModeDefinitionsHaveNoPolicies() throws {
        let parsed = try JSONParser().parse(Array(RelayTopology(prefix: "p").definitionsJSON(vhost: "v").utf8))
        #expect(parsed["policies"]?.arrayValue == [])
        #expect(parsed["exchanges"]?.arrayValue?.first?["arguments"]?["alternate-exchange"] == .string("p.unroutable"))
        #expect(parsed["queues"]?.arrayValue?.first?["vhost"] == .string("v"))
    }

    // MARK: - The effective-policy decision

    /// The management API's answers for a broker where every policy of `topology` is in force.
    func healthyAnswers(
        _ topology: RelayTopology
    ) -> (
        queues: [String: JSONValue], exchanges: [String: JSONValue], policies: JSONValue
    ) {
        var queues: [String: JSONValue] = [:]
        var exchanges: [String: JSONValue] = [:]
        for policy in topology.policies {
            for name in policy.covers {
                if policy.applyTo == .queues {
                    queues[name] = .object([
                        "name": .string(name), "policy": .string(policy.name),
                        "effective_policy_definition": policy.definitionJSON,
                    ])
                } else {
                    // An exchange's answer names its policy but has no effective definition.
                    exchanges[name] = .object(["name": .string(name), "policy": .string(policy.name)])
                }
            }
        }
        let listed = JSONValue.array(
            topology.policies.map {
                .object(["name": .string($0.name), "pattern": .string($0.pattern), "definition": $0.definitionJSON])
            })
        return (queues, exchanges, listed)
    }

    @Test func everythingInForceHasNoProblems() {
        let topology = RelayTopology(mode: .policies)
        let answers = healthyAnswers(topology)
        #expect(
            topology.policyProblems(queues: answers.queues, exchanges: answers.exchanges, policies: answers.policies)
                .isEmpty)
    }

    @Test func aQueueWithoutPolicyMissesEveryKey() {
        let topology = RelayTopology(mode: .policies)
        var answers = healthyAnswers(topology)
        // What 3.10 answers for a queue without policy: no `policy`, an empty list as definition.
        answers.queues["klaviyo.retry.5s"] = .object([
            "name": "klaviyo.retry.5s", "effective_policy_definition": .array([]),
        ])
        let problems = topology.policyProblems(
            queues: answers.queues, exchanges: answers.exchanges, policies: answers.policies)
        #expect(problems.map(\.name) == Array(repeating: "klaviyo.retry.5s", count: 4))
        #expect(problems.map(\.key) == ["message-ttl", "dead-letter-exchange", "dead-letter-strategy", "overflow"])
        #expect(problems.allSatisfy { $0.inForce == nil && $0.policy == "klaviyo-retry-5s" })
        #expect(
            PolicyProblem.summary(problems)
                == "queue klaviyo.retry.5s has no policy in force, so it lacks message-ttl = 5000, "
                + "dead-letter-exchange = klaviyo.commands, dead-letter-strategy = at-least-once, "
                + "overflow = reject-publish (policy klaviyo-retry-5s sets them)")
        #expect(
            problems[0].description
                == "queue klaviyo.retry.5s has no policy in force: message-ttl is missing (policy klaviyo-retry-5s sets message-ttl = 5000)"
        )
    }

    @Test func anotherPolicyInForceMustCarryEveryKey() {
        let topology = RelayTopology(mode: .policies)
        var answers = healthyAnswers(topology)
        // An operator's higher-priority policy on the profiles queue that forgot dead-lettering and changed the limit.
        answers.queues["klaviyo.profiles"] = .object([
            "policy": "ops-override",
            "effective_policy_definition": .object([
                "delivery-limit": .int(20), "overflow": "reject-publish", "dead-letter-strategy": "at-least-once",
            ]),
        ])
        var listed = answers.policies.arrayValue ?? []
        listed.append(.object(["name": "ops-override", "definition": .object([:])]))
        let problems = topology.policyProblems(
            queues: answers.queues, exchanges: answers.exchanges, policies: .array(listed))
        #expect(problems.count == 2)
        #expect(problems.map(\.key) == ["delivery-limit", "dead-letter-exchange"])
        #expect(
            PolicyProblem.summary(problems)
                == "queue klaviyo.profiles its policy ops-override lacks delivery-limit = 10 (has 20), "
                + "dead-letter-exchange = klaviyo.dead (policy klaviyo-work-queues sets them)")
        #expect(problems[0].found == .int(20))
        #expect(
            problems[0].description
                == "queue klaviyo.profiles: its policy ops-override sets delivery-limit = 20, the relay needs 10")
        #expect(
            problems[1].description
                == "queue klaviyo.profiles: its policy ops-override has no dead-letter-exchange (policy klaviyo-work-queues sets dead-letter-exchange = klaviyo.dead)"
        )
    }

    @Test func theDeadQueueBoundMayBeRaisedButNotDropped() {
        let topology = RelayTopology(mode: .policies)
        var answers = healthyAnswers(topology)
        answers.queues["klaviyo.dead"] = .object([
            "policy": "klaviyo-dead-bound",
            "effective_policy_definition": .object(["max-length": .int(5_000_000), "overflow": "reject-publish"]),
        ])
        #expect(
            topology.policyProblems(queues: answers.queues, exchanges: answers.exchanges, policies: answers.policies)
                .isEmpty)
        answers.queues["klaviyo.dead"] = .object([
            "policy": "klaviyo-dead-bound",
            "effective_policy_definition": .object(["max-length": .int(5_000_000), "overflow": "drop-head"]),
        ])
        let problems = topology.policyProblems(
            queues: answers.queues, exchanges: answers.exchanges, policies: answers.policies)
        #expect(problems.map(\.key) == ["overflow"])
    }

    /// RabbitMQ 4's default delivery limit (20) would drop a dead letter requeued by that many `dlq` scans: on a
    /// 4.x broker the dead queue's policy lifts it, and the check then wants it in force; 3.x is left as it was.
    @Test func onRabbitMQ4TheDeadQueueHasNoDeliveryLimit() {
        #expect(RelayTopology.majorVersion("4.0.5") == 4)
        #expect(RelayTopology.majorVersion("3.10.8") == 3)
        #expect(RelayTopology.majorVersion("unknown") == nil)
        var topology = RelayTopology(mode: .policies)
        topology.unlimitedDeadDeliveries = true
        let dead = topology.policies.first { $0.name == "klaviyo-dead-bound" }
        #expect(dead?.definitionJSON["delivery-limit"] == .int(-1))
        #expect(dead?.definitionJSON["max-length"] == .int(1_000_000))
        let answers = healthyAnswers(RelayTopology(mode: .policies))
        let problems = topology.policyProblems(
            queues: answers.queues, exchanges: answers.exchanges, policies: answers.policies)
        #expect(problems.map(\.key) == ["delivery-limit"], "a 3.x-shaped dead-bound policy on a 4.x broker")
        #expect(
            RelayTopology(mode: .policies).policies.first { $0.name == "klaviyo-dead-bound" }?
                .definitionJSON["delivery-limit"] == nil)
    }

    @Test func aStaleOrDeletedPolicyCountsAsNone() {
        let topology = RelayTopology(mode: .policies)
        var answers = healthyAnswers(topology)
        // The management API still names klaviyo-retry-1s for a while after it was deleted.
        answers.policies = .array((answers.policies.arrayValue ?? []).filter { $0["name"] != "klaviyo-retry-1s" })
        let problems = topology.policyProblems(
            queues: answers.queues, exchanges: answers.exchanges, policies: answers.policies)
        #expect(Set(problems.map(\.name)) == ["klaviyo.retry.1s"])
        #expect(problems.count == 4)
    }

    @Test func theExchangeDefinitionComesFromThePolicyList() {
        let topology = RelayTopology(mode: .policies)
        var answers = healthyAnswers(topology)
        var listed = answers.policies.arrayValue ?? []
        listed = listed.map {
            $0["name"] == "klaviyo-commands-exchange"
                ? .object([
                    "name": "klaviyo-commands-exchange", "definition": .object(["alternate-exchange": "elsewhere"]),
                ])
                : $0
        }
        var problems = topology.policyProblems(
            queues: answers.queues, exchanges: answers.exchanges, policies: .array(listed))
        #expect(
            problems.map(\.description) == [
                "exchange klaviyo.commands: its policy klaviyo-commands-exchange sets alternate-exchange = elsewhere, the relay needs klaviyo.unroutable"
            ])
        answers.exchanges["klaviyo.commands"] = .object(["name": "klaviyo.commands", "policy": .null])
        problems = topology.policyProblems(
            queues: answers.queues, exchanges: answers.exchanges, policies: answers.policies)
        #expect(problems.map(\.key) == ["alternate-exchange"])
        #expect(problems.first?.inForce == nil)
        // A queue the broker does not know (404).
        answers.queues["klaviyo.events"] = nil
        problems = topology.policyProblems(
            queues: answers.queues, exchanges: answers.exchanges, policies: answers.policies)
        #expect(problems.contains { $0.name == "klaviyo.events" && $0.key == nil })
        #expect(
            problems.first { $0.name == "klaviyo.events" }?.description
                == "queue klaviyo.events does not exist (run `klaviyo-relay setup`)")
    }

    // MARK: - Configuration

    @Test func topologyModeSetting() throws {
        let defaults = try RelayConfiguration(environment: [:], development: true)
        #expect(defaults.topologyMode == .arguments)
        #expect(defaults.rabbitMQManagementURL == nil)
        let policies = try RelayConfiguration(
            environment: [
                "RELAY_TOPOLOGY": "policies", "RELAY_RABBITMQ_MANAGEMENT_URL": "http://relay:s3cr%40t@rabbit:15672",
            ], development: true)
        #expect(policies.topologyMode == .policies)
        #expect(policies.rabbitMQManagementURL == "http://relay:s3cr%40t@rabbit:15672")
        #expect(policies.description.contains("topology=policies"))
        #expect(!policies.description.contains("s3cr"))
        #expect(
            try RelayConfiguration(environment: ["RELAY_TOPOLOGY": "arguments"], development: true).topologyMode
                == .arguments)
        for wrong in ["Policies", "policy", "both"] {
            let refused = #expect(throws: RelayError.self) {
                try RelayConfiguration(environment: ["RELAY_TOPOLOGY": wrong], development: true)
            }
            #expect(refused?.code == .invalidConfiguration)
            #expect(refused?.message == "RELAY_TOPOLOGY must be arguments (queue arguments, the default) or policies")
        }
    }

    @Test func managementURLKeepsCredentialsOutOfTheURL() throws {
        let parsed = try RabbitMQManagement.parse("http://relay:p%40ss:word@rabbit.internal:15672/")
        #expect(parsed.base == "http://rabbit.internal:15672")
        #expect(parsed.user == "relay")
        #expect(parsed.password == "p@ss:word")
        let prefixed = try RabbitMQManagement.parse("https://rabbit.example/mgmt")
        #expect(prefixed.base == "https://rabbit.example/mgmt")
        #expect(prefixed.user == nil)
        for wrong in ["amqp://guest:hunter2@host:5672", "guest:hunter2@host", "http://guest:hunter2@", "http://h?x=1"] {
            let refused = #expect(throws: RelayError.self) { try RabbitMQManagement.parse(wrong) }
            #expect(refused?.code == .invalidConfiguration)
            #expect(refused.map { !$0.message.contains("hunter2") } ?? false, "\(refused?.message ?? "")")
        }
        #expect(RabbitMQManagement.segment("/") == "%2F")
        #expect(RabbitMQManagement.segment("klaviyo.retry.1s") == "klaviyo.retry.1s")
    }
}
