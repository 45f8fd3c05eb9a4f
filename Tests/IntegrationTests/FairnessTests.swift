import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// One account's backlog does not hold up the other accounts sharing the queues (issue #8 item 4): past its share
/// of a consumer's slots, an account's deliveries are bundled and parked, and every bundled command still ends
/// exactly once, also when a consumer dies while unpacking a bundle.
@Suite("Fairness between accounts", .timeLimit(.minutes(4)))
struct FairnessTests {
    func upsert(_ stack: RelayStack, account: String, id: String) async throws {
        try await stack.publish(
            commandBody(
                id: id, type: "profile.upsert", accountID: account,
                payload: ["profile": ["email": .string("\(id)@example.com".lowercased())]]),
            routingKey: "profile.upsert", messageID: id)
    }

    /// Publishes one command of `type` (`profile.upsert` or `event.track`).
    func command(_ stack: RelayStack, _ type: String, account: String, id: String) async throws {
        if type == "event.track" {
            try await event(stack, account: account, id: id)
        } else {
            try await upsert(stack, account: account, id: id)
        }
    }

    /// Publishes commands with their confirms pipelined (their order among themselves does not matter here).
    func publishAll(
        _ stack: RelayStack, account: String, ids: [String], type: String = "profile.upsert"
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in ids { group.addTask { try await command(stack, type, account: account, id: id) } }
            try await group.waitForAll()
        }
    }

    /// Connects a hot account and 5 others, publishes `hotCount` commands of `type` for the hot account, then 4 for
    /// each other account behind them, one after the other.
    func publishHotThenOthers(
        _ stack: RelayStack, hotCount: Int, type: String
    ) async throws -> (hot: String, hotIDs: [String], otherIDs: [String]) {
        let (hot, _) = try await stack.connectAccount()
        var others: [String] = []
        for _ in 0..<5 { others.append(try await stack.connectAccount().0) }
        let hotIDs = (0..<hotCount).map { stack.id("hot-\(type)-\($0)") }
        try await publishAll(stack, account: hot, ids: hotIDs, type: type)
        var otherIDs: [String] = []
        for (index, account) in others.enumerated() {
            for n in 0..<4 {
                let id = stack.id("other-\(type)-\(index)-\(n)")
                otherIDs.append(id)
                try await command(stack, type, account: account, id: id)
            }
        }
        return (hot, hotIDs, otherIDs)
    }

    /// The command ids of the results collected so far, in the order they were published.
    func resultIDs(_ stack: RelayStack) -> [String] {
        stack.deliveries.filter { $0.properties.headers[DeadLetter.Header.errorCode] == nil }
            .compactMap { try? JSONValue.parse($0.body) }.compactMap(CommandResult.init(json:)).map(\.commandID)
    }

    func expectOneResultEach(_ results: [String], _ ids: [String]) {
        let counts = Dictionary(results.map { ($0, 1) }, uniquingKeysWith: +)
        let wrong = ids.filter { counts[$0] != 1 }
        #expect(wrong.isEmpty, "not exactly one result: \(wrong.prefix(5).map { ($0, counts[$0] ?? 0) })")
    }

    /// 1,500 upserts of one account published first, then 5 other accounts' 4 each: with the hot account held to a
    /// quarter of the 16 slots, the others' results come before the hot account's 500th (without fairness they
    /// come after all 1,500, measured: the queue is first in, first out), and every command has exactly one result.
    @Test func otherAccountsOvertakeAHotBacklog() async throws {
        try await withRelayStack { stack in
            let (hot, hotIDs, otherIDs) = try await publishHotThenOthers(stack, hotCount: 1500, type: "profile.upsert")
            // No rate limiting or coalescing: results come in the order commands are processed.
            let consumer = try stack.startConsumer(
                concurrency: 16, environment: ["RELAY_RATE_LIMIT": "off", "RELAY_COALESCE": "off"])
            try await stack.waitForCollected(hotIDs.count + otherIDs.count, timeout: .seconds(180))

            let order = resultIDs(stack)
            let otherSet = Set(otherIDs)
            let lastOther = try #require(order.lastIndex { otherSet.contains($0) })
            let hotBefore = order[..<lastOther].filter { !otherSet.contains($0) }.count
            #expect(hotBefore < 500, "the others finished after \(hotBefore) of the hot account's 1,500 commands")
            expectOneResultEach(order, hotIDs + otherIDs)
            #expect(stack.deadLetters.isEmpty)
            #expect(consumer.log.contains("fair_share=0.25") && consumer.log.contains("bundle parked"))
            let profiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(hot)/profiles")
            #expect(profiles["count"] == .int(1500))
        }
    }

    func event(_ stack: RelayStack, account: String, id: String) async throws {
        try await stack.publish(
            commandBody(
                id: id, type: "event.track", accountID: account,
                payload: [
                    "metric": "Viewed Product", "profile": ["email": .string("\(id)@example.com".lowercased())],
                ]),
            routingKey: "event.track", messageID: id)
    }

    /// The events queue: 10,000 events of one account whose bulk calls wait for their rate-limit slots (the
    /// relay's limiter at 10 % of Klaviyo's limits: a bulk call every 4 s, so most wait inline for their slot),
    /// then 5 other accounts' 4 events each. The hot account holds at most 1,000 events in flight and the rest is
    /// bundled, so the others' events are reached while most of the hot backlog is still to come (before, its
    /// waiting events filled the events prefetch and the others came after nearly all of it: measured 8,000+).
    @Test func otherAccountsEventsOvertakeAHotEventsBacklogWaitingForItsAllowance() async throws {
        try await withRelayStack { stack in
            let (_, _, otherIDs) = try await publishHotThenOthers(stack, hotCount: 10_000, type: "event.track")
            let consumer = try stack.startConsumer(
                concurrency: 16,
                environment: [
                    "RELAY_RATE_LIMIT": "spec", "RELAY_RATE_LIMIT_SHARE": "0.1",
                    // Its events still wait for their slots at the end: hand them back at once on SIGTERM.
                    "RELAY_SHUTDOWN_TIMEOUT": "1s",
                ])
            let otherSet = Set(otherIDs)
            try await eventually("the other accounts' events to end", timeout: .seconds(150), every: .milliseconds(250))
            {
                otherSet.isSubset(of: Set(resultIDs(stack)))
            }
            let hotDone = resultIDs(stack).filter { !otherSet.contains($0) }.count
            // The hot account goes on at its allowance (wall-clock paced) while the others wait for CPU, so on a
            // loaded machine more of it is done by then (5,904 once, under a full parallel test run); without the
            // in-flight cap the others came after nearly all of it (8,293 measured).
            #expect(hotDone < 7500, "the others came after most of the hot backlog (\(hotDone) of 10,000 done)")
            let byCommand = stack.resultsByCommand()
            for id in otherIDs { #expect(byCommand[id]?.first?.outcome == .succeeded, "\(id)") }
            #expect(stack.deadLetters.isEmpty)
            #expect(consumer.log.contains("bundle parked"), "the hot account's events were bundled")
        }
    }

    /// A consumer SIGKILLed while it unpacks a bundle: the broker delivers the bundle again, the next consumer
    /// dissolves it into single parked commands (sealed as possibly sent), and every command ends. Results are at
    /// least once: a member killed between publishing its result and marking it published is published again
    /// (the same result), so at most the members in flight at the kill have two.
    @Test func aBundleDeliveredAgainIsDissolvedAndNothingIsLost() async throws {
        try await withRelayStack { stack in
            let (hot, _) = try await stack.connectAccount()
            let ids = (0..<400).map { stack.id("dissolve-\($0)") }
            try await publishAll(stack, account: hot, ids: ids)
            // Single calls in processing order; the consumer dies on the first command it unpacks from a bundle,
            // after Klaviyo answered.
            let settings = ["RELAY_RATE_LIMIT": "off", "RELAY_COALESCE": "off"]
            let doomed = try stack.startConsumer(
                concurrency: 16,
                environment: settings.merging([
                    "RELAY_ENABLE_FAULT_INJECTION": "1", "RELAY_FAULT_CRASH_AT": "unpacked_after_klaviyo_call",
                ]) { _, new in new })
            let ending = try await doomed.waitForExit(timeout: .seconds(90))
            #expect(ending.reason == .uncaughtSignal && ending.status == SIGKILL)
            #expect(doomed.log.contains("bundle parked"), "the doomed consumer bundled commands")

            let survivor = try stack.startConsumer(concurrency: 16, environment: settings)
            try await eventually("every command to end", timeout: .seconds(120), every: .milliseconds(250)) {
                Set(ids).isSubset(of: Set(resultIDs(stack)))
            }
            #expect(survivor.log.contains("bundle delivered again"), "the survivor dissolved the bundle")
            let results = stack.deliveries.filter { $0.properties.headers[DeadLetter.Header.errorCode] == nil }
                .compactMap { try? JSONValue.parse($0.body) }.compactMap(CommandResult.init(json:))
            #expect(results.allSatisfy { $0.outcome == .succeeded })
            let counts = Dictionary(results.map { ($0.commandID, 1) }, uniquingKeysWith: +)
            let twice = counts.filter { $0.value > 1 }
            #expect(twice.count <= 16 && twice.values.allSatisfy { $0 == 2 }, "more than in flight: \(twice)")
            #expect(stack.deadLetters.isEmpty)
            let profiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(hot)/profiles")
            #expect(profiles["count"] == .int(400))
        }
    }

    /// A publisher cannot pass a command off as a bundle: an unsealed `x-relay-bundle` header changes nothing (the
    /// command is processed), and a body made to look like a bundle is dead-lettered as it is.
    @Test func aForgedBundleHeaderIsAnOrdinaryCommand() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1)
            let id = stack.id("forged")
            try await stack.publish(
                commandBody(
                    id: id, type: "profile.upsert", accountID: account,
                    payload: ["profile": ["email": .string("\(id)@example.com".lowercased())]]),
                routingKey: "profile.upsert", messageID: id, headers: [DeliveryBundle.header: .int(2)])
            let forgedBody = DeliveryBundle(members: []).encoded()
            try await stack.publish(
                forgedBody, routingKey: "profile.upsert", messageID: stack.id("forged-body"),
                headers: [
                    DeliveryBundle.header: .int(0), HeaderSeal.header: .string(String(repeating: "0", count: 64)),
                ])
            try await stack.waitForCollected(2)
            #expect(stack.results(for: id).first?.outcome == .succeeded)
            let dead = try #require(stack.deadLetters.first)
            #expect(dead.body == forgedBody, "the dead letter carries the body byte for byte")
        }
    }
}
