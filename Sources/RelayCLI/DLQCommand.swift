import AMQP
import ArgumentParser
import Foundation
import Klaviyo
import Relay

/// `klaviyo-relay dlq …`: list, show, replay, purge and export the dead-letter queue (docs/operations.md, "Dead-letter
/// triage").
///
/// Every subcommand takes messages with `basic.get` and holds them unacked; nothing is removed before its
/// replacement is confirmed (replay) or the operator confirmed (purge), and whatever is held is handed back at
/// the end or, if the run is interrupted, by the broker when the connection closes.
struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "Inspect, replay, purge and export dead letters.",
        subcommands: [List.self, Stats.self, Show.self, Replay.self, Purge.self, Export.self])

    /// The filters every subcommand but `show` takes.
    struct Filters: ParsableArguments {
        @Option(help: "Only this HeroPixel account id.")
        var account: String?

        @Option(help: "Only this command type (a trailing * matches a prefix: 'profile.*').")
        var type: String?

        @Option(help: "Only this error code (schema_invalid, not_connected, retries_exhausted, delivery_limit, …).")
        var code: String?

        @Option(help: "Only dead letters at least this old (500ms, 30s, 10m, 2h, 7d).")
        var olderThan: String?

        @Option(help: "At most this many dead letters.")
        var limit: Int?

        @Option(help: "Only the dead letter of this command id (or the AMQP message id of one that names no command).")
        var id: String?

        func validate() throws {
            if let olderThan, RelayConfiguration.parseDuration(olderThan) == nil {
                throw ValidationError("--older-than must be a duration such as 30s, 10m, 2h or 7d, at most 365d")
            }
            if let limit, limit < 1 { throw ValidationError("--limit must be positive") }
        }

        var filter: DeadLetterFilter {
            DeadLetterFilter(
                account: account, type: type, code: code,
                olderThan: olderThan.flatMap(RelayConfiguration.parseDuration),
                limit: limit, id: id)
        }

        /// Refuses a replay or purge by `--id` that matched several dead letters (another account reused the id:
        /// its `id_conflict` dead letter names the same command id): which one was meant is the operator's call.
        func refuseAmbiguous(_ selected: [DeadLetterQueue.Held]) throws {
            guard let id, selected.count > 1 else { return }
            let candidates = selected.map { "account \(dlqSafe($0.summary.accountID ?? "-")) [\($0.summary.code)]" }
            throw CLIError(
                "\(selected.count) dead letters have id \(dlqSafe(id)) (\(candidates.joined(separator: ", "))); "
                    + "narrow with --account or --code; nothing changed")
        }
    }

    static func runtime(_ options: GlobalOptions) throws -> Runtime {
        try Runtime.make(options, label: "klaviyo-relay.dlq", connectionName: "klaviyo-relay dlq")
    }

    /// The dead-letter queue tool, with the relay's key ring (`RELAY_ENCRYPTION_KEY`, the development key with
    /// `--dev`) to verify which dead letters the relay made: the others are never attributed by their headers.
    static func queue(_ runtime: Runtime) -> DeadLetterQueue {
        DeadLetterQueue(
            amqp: runtime.amqp, topology: runtime.topology,
            seal: HeaderSeal(keyRing: runtime.configuration.encryptionKeys))
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List dead letters (age, account, type, code, detail, attempts, id).")

        @OptionGroup var options: GlobalOptions
        @OptionGroup var filters: Filters

        @Flag(help: "One JSON object per line instead of the table.")
        var json = false

        func run() async throws {
            let runtime = try DLQCommand.runtime(options)
            let queue = DLQCommand.queue(runtime)
            let now = Timestamp.nowMilliseconds()
            let filter = filters.filter
            let json = self.json
            try await runtime.withAMQP {
                let selection = try await queue.scan(
                    filter, nowMilliseconds: now, keepBodies: false, progress: dlqProgress)
                await queue.release(selection.others + selection.selected.map(\.delivery))
                let summaries = selection.selected.map(\.summary)
                if json {
                    for summary in summaries { dlqPrintJSON(summary.json(nowMilliseconds: now)) }
                } else {
                    dlqPrintTable(summaries, nowMilliseconds: now)
                    print("\(summaries.count) dead letter(s) matched; \(selection.others.count) other(s) left in place")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show one dead letter's properties, headers and body.")

        @OptionGroup var options: GlobalOptions

        @Argument(help: "Command id (or the AMQP message id of a dead letter that names no command).")
        var id: String

        func run() async throws {
            let runtime = try DLQCommand.runtime(options)
            let queue = DLQCommand.queue(runtime)
            let id = self.id
            let found = try await runtime.withAMQP { try await queue.find(id) }
            guard !found.isEmpty else { throw CLIError("no dead letter with command or message id \(dlqSafe(id))") }
            for (index, held) in found.enumerated() {
                if found.count > 1 { print("\(index == 0 ? "" : "\n")dead letter \(index + 1) of \(found.count):") }
                show(held)
            }
        }

        func show(_ found: DeadLetterQueue.Held) {
            let summary = found.summary
            let delivery = found.delivery
            let now = Timestamp.nowMilliseconds()
            print("command id:   \(dlqSafe(summary.commandID ?? "-"))")
            print("message id:   \(dlqSafe(summary.messageID ?? "-"))")
            print("account:      \(dlqSafe(summary.accountID ?? "-"))")
            print("type:         \(dlqSafe(summary.type ?? "-"))")
            let origin =
                summary.brokerMade
                ? " (made by the broker)"
                : summary.sealed ? "" : " (unsealed: an older relay's or forged; not attributed)"
            print("code:         \(dlqSafe(summary.code))\(origin)")
            print("detail:       \(dlqSafe(summary.detail))")
            print("attempts:     \(summary.attempts.map(String.init) ?? "-")")
            print("age:          \(summary.age(nowMilliseconds: now).map(dlqFormatAge) ?? "-")")
            print("routing key:  \(dlqSafe(summary.originalRoutingKey))")
            print("properties:")
            let properties = delivery.properties
            for (name, value) in [
                ("content_type", properties.contentType), ("content_encoding", properties.contentEncoding),
                ("message_id", properties.messageID), ("correlation_id", properties.correlationID),
                ("reply_to", properties.replyTo), ("type", properties.type), ("app_id", properties.appID),
                ("expiration", properties.expiration),
                ("timestamp", properties.timestamp.map { "\($0) (\(Timestamp.format(epochSeconds: $0)))" }),
            ] {
                if let value { print("  \(name): \(dlqSafe(value))") }
            }
            print("  persistent: \(properties.persistent)")
            print("headers:")
            for name in properties.headers.keys.sorted() {
                print("  \(dlqSafe(name)): \(dlqSafe(DeadLetterExport.describe(properties.headers[name]!)))")
            }
            print("body (\(delivery.body.count) bytes):")
            print(dlqPrettyBody(delivery.body))
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay",
            abstract:
                "Republish dead letters to the commands exchange; each is removed only after the broker confirmed its copy."
        )

        @OptionGroup var options: GlobalOptions
        @OptionGroup var filters: Filters

        @Flag(help: "Only print what would be replayed; change nothing.")
        var dryRun = false

        @Option(help: "At most this many replays per second (0.001 to 1000000).")
        var rate: Double?

        func validate() throws {
            // Bounded so that 1 / rate is a representable Duration (a rate of 1e-300 would trap).
            if let rate, !(rate >= 0.001 && rate <= 1_000_000) {
                throw ValidationError("--rate must be a number from 0.001 to 1000000")
            }
        }

        func run() async throws {
            let runtime = try DLQCommand.runtime(options)
            let queue = DLQCommand.queue(runtime)
            let filter = filters.filter
            let dryRun = self.dryRun
            let interval = rate.map { Duration.seconds(1 / $0) }
            let commands = runtime.topology.commandsExchange
            let wantedID = filters.id
            let filters = self.filters
            let notReplayed = try await runtime.withAMQP { () async throws -> Int in
                let selection = try await queue.scan(filter, progress: dlqProgress)
                var remaining = selection.selected
                var replayed = 0
                var failed = 0
                defer {
                    print(
                        dryRun
                            ? "dry run: \(remaining.count) dead letter(s) would be replayed; nothing changed"
                            : "replayed \(replayed), failed \(failed)")
                }
                if let wantedID, selection.selected.isEmpty {
                    await queue.release(selection.others)
                    print("no dead letter with command or message id \(dlqSafe(wantedID))")
                    return 1
                }
                do {
                    try filters.refuseAmbiguous(selection.selected)
                } catch {
                    remaining = []
                    await queue.release(selection.others + selection.selected.map(\.delivery))
                    throw error
                }
                if dryRun {
                    for held in remaining {
                        print(
                            "would replay \(dlqLabel(held.summary)) to \(commands) with routing key \(dlqSafe(held.summary.originalRoutingKey))"
                        )
                    }
                    await queue.release(selection.others + remaining.map(\.delivery))
                    return 0
                }
                var kept: [AMQPDelivery] = []
                var last: ContinuousClock.Instant?
                // Each taken in order; what is still to go is `remaining[next...]` (no quadratic removeFirst).
                var next = 0
                defer { remaining = Array(remaining[next...]) }
                while next < remaining.count {
                    let held = remaining[next]
                    next += 1
                    if let interval, let last { try? await Task.sleep(until: last + interval, clock: .continuous) }
                    last = ContinuousClock.now
                    if (replayed + failed) % 100 == 99 {
                        dlqProgressLine("replay: \(replayed + failed + 1) of \(selection.selected.count)")
                    }
                    do {
                        try await queue.replay(held)
                        replayed += 1
                        print(
                            "replayed \(dlqLabel(held.summary)) to \(commands) with routing key \(dlqSafe(held.summary.originalRoutingKey))"
                        )
                    } catch let error as AMQPError where error.code == .unroutable || error.code == .publishNacked {
                        failed += 1
                        kept.append(held.delivery)
                        print("NOT replayed \(dlqLabel(held.summary)): \(error); the dead letter stays")
                    } catch {
                        // Broker gone: hand back what we still hold (the connection's end does it too).
                        failed += 1
                        await queue.release(
                            selection.others + kept + [held.delivery] + remaining[next...].map(\.delivery))
                        throw CLIError(
                            "replay stopped at \(dlqLabel(held.summary)): \(error); nothing unconfirmed was removed")
                    }
                }
                await queue.release(selection.others + kept)
                return failed
            }
            if notReplayed > 0 { throw ExitCode(2) }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats",
            abstract: "Count dead letters by code, account, type and age (reads them all, removes none).")

        @OptionGroup var options: GlobalOptions
        @OptionGroup var filters: Filters

        @Option(help: "Rows shown per table (the largest counts).")
        var top = 10

        @Flag(help: "One JSON object instead of the tables.")
        var json = false

        func validate() throws {
            // `prefix(top)` traps on a negative length.
            if top < 0 { throw ValidationError("--top must be 0 or more") }
        }

        func run() async throws {
            let runtime = try DLQCommand.runtime(options)
            let queue = DLQCommand.queue(runtime)
            let now = Timestamp.nowMilliseconds()
            let filter = filters.filter
            let stats = try await runtime.withAMQP {
                let selection = try await queue.scan(
                    filter, nowMilliseconds: now, keepBodies: false, progress: dlqProgress)
                await queue.release(selection.others + selection.selected.map(\.delivery))
                return DeadLetterStats(selection.selected.map(\.summary), nowMilliseconds: now)
            }
            if json {
                dlqPrintJSON(stats.json)
                return
            }
            print("\(stats.total) dead letter(s)")
            for (title, counts) in [
                ("CODE", stats.byCode), ("ACCOUNT", stats.byAccount), ("TYPE", stats.byType),
            ] {
                let ranked = DeadLetterStats.ranked(counts)
                print("")
                dlqPrintCounts(title, ranked.prefix(top).map { ($0.key, $0.count) })
                if ranked.count > top { print("(\(ranked.count - top) more)") }
            }
            print("")
            let ages = DeadLetterStats.ageBuckets.map(\.label) + [DeadLetterStats.unknownAge]
            dlqPrintCounts("AGE", ages.compactMap { label in stats.byAge[label].map { (label, $0) } })
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "purge", abstract: "Delete dead letters for good (asks first unless --yes).")

        @OptionGroup var options: GlobalOptions
        @OptionGroup var filters: Filters

        @Flag(help: "Do not ask for confirmation.")
        var yes = false

        func run() async throws {
            let runtime = try DLQCommand.runtime(options)
            let queue = DLQCommand.queue(runtime)
            let filter = filters.filter
            let yes = self.yes
            let filters = self.filters
            let now = Timestamp.nowMilliseconds()
            try await runtime.withAMQP {
                let selection = try await queue.scan(
                    filter, nowMilliseconds: now, keepBodies: false, progress: dlqProgress)
                guard !selection.selected.isEmpty else {
                    await queue.release(selection.others)
                    print("no dead letters matched; nothing purged")
                    return
                }
                do {
                    try filters.refuseAmbiguous(selection.selected)
                } catch {
                    await queue.release(selection.others + selection.selected.map(\.delivery))
                    throw error
                }
                dlqPrintTable(selection.selected.map(\.summary), nowMilliseconds: now)
                var confirmed = yes
                if !confirmed {
                    FileHandle.standardError.write(
                        Data("Delete these \(selection.selected.count) dead letter(s) for good? [y/N] ".utf8))
                    let answer = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces).lowercased()
                    confirmed = answer == "y" || answer == "yes"
                }
                guard confirmed else {
                    await queue.release(selection.others + selection.selected.map(\.delivery))
                    print("nothing purged")
                    return
                }
                var purged = 0
                for held in selection.selected {
                    try await queue.remove(held.delivery)
                    purged += 1
                }
                await queue.release(selection.others)
                print("purged \(purged) dead letter(s)")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write dead letters as NDJSON (properties, headers, body) without removing them.")

        @OptionGroup var options: GlobalOptions
        @OptionGroup var filters: Filters

        @Option(help: "File to write ('-' or omitted: standard output).")
        var output: String?

        func run() async throws {
            let runtime = try DLQCommand.runtime(options)
            let queue = DLQCommand.queue(runtime)
            let filter = filters.filter
            let now = Timestamp.nowMilliseconds()
            // Each line is written as its dead letter is taken, so the export holds no bodies in memory.
            let target = try ExportTarget(output)
            let exported: Int
            do {
                exported = try await runtime.withAMQP {
                    let selection = try await queue.scan(
                        filter, nowMilliseconds: now, keepBodies: false, progress: dlqProgress
                    ) { held in
                        try target.write(DeadLetterExport.line(held, nowMilliseconds: now) + "\n")
                    }
                    await queue.release(selection.others + selection.selected.map(\.delivery))
                    return selection.selected.count
                }
                try target.finish()
            } catch {
                target.abandon()
                throw error
            }
            if let path = target.path {
                FileHandle.standardError.write(Data("exported \(exported) dead letter(s) to \(path)\n".utf8))
            }
        }
    }
}

/// Where `dlq export` writes: standard output, or a file. Dead letters hold customer data: the file is the
/// operator's alone (0600), written beside the target and renamed into place once complete.
final class ExportTarget {
    /// The file asked for; nil for standard output.
    let path: String?
    let temporary: String?
    let handle: FileHandle

    init(_ output: String?) throws {
        guard let output, output != "-" else {
            (path, temporary, handle) = (nil, nil, FileHandle.standardOutput)
            return
        }
        let temporary = output + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        guard
            FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600]),
            let handle = FileHandle(forWritingAtPath: temporary)
        else { throw CLIError("could not write \(output)") }
        (path, self.temporary, self.handle) = (output, temporary, handle)
    }

    func write(_ line: String) throws {
        try handle.write(contentsOf: Data(line.utf8))
    }

    /// Closes the file and renames it into place.
    func finish() throws {
        guard let path, let temporary else { return }
        try handle.close()
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw CLIError("could not write \(path): \(reason)")
        }
    }

    /// Removes a partial file after a failure.
    func abandon() {
        guard let temporary else { return }
        try? handle.close()
        try? FileManager.default.removeItem(atPath: temporary)
    }
}

// MARK: - Output

/// Progress of a long scan on standard error (every 1,000 messages), so standard output stays the answer.
func dlqProgress(_ taken: Int) {
    if taken % 1000 == 0 { dlqProgressLine("read \(taken) dead letter(s)…") }
}

func dlqProgressLine(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Dead-letter text for the terminal (``DeadLetterExport/terminalSafe(_:keepingLines:)``).
func dlqSafe(_ text: String) -> String { DeadLetterExport.terminalSafe(text) }

func dlqPrintCounts(_ title: String, _ rows: [(String, Int)]) {
    let rows = rows.map { (dlqSafe($0.0), $0.1) }
    let width = max(title.count, rows.map(\.0.count).max() ?? 0)
    print(title + String(repeating: " ", count: width - title.count) + "  COUNT")
    for (key, count) in rows { print(key + String(repeating: " ", count: width - key.count) + "  \(count)") }
}

func dlqLabel(_ summary: DeadLetterSummary) -> String {
    dlqSafe("\(summary.commandID ?? summary.messageID ?? "(no id)") [\(summary.code)]")
}

func dlqPrintJSON(_ value: JSONValue) {
    print(String(decoding: value.jsonBytes(), as: UTF8.self))
}

func dlqFormatAge(_ age: Duration) -> String {
    let seconds = age.components.seconds
    if seconds < 60 { return "\(seconds)s" }
    if seconds < 3600 { return "\(seconds / 60)m" }
    if seconds < 48 * 3600 { return "\(seconds / 3600)h" }
    return "\(seconds / 86400)d"
}

func dlqPrintTable(_ summaries: [DeadLetterSummary], nowMilliseconds: Int64) {
    let header = ["AGE", "ACCOUNT", "TYPE", "CODE", "DETAIL", "ATTEMPTS", "COMMAND ID"]
    let rows = summaries.map { summary -> [String] in
        let detail = summary.detail.count > 48 ? String(summary.detail.prefix(47)) + "…" : summary.detail
        return [
            summary.age(nowMilliseconds: nowMilliseconds).map(dlqFormatAge) ?? "-", summary.accountID ?? "-",
            summary.type ?? "-", summary.code, detail, summary.attempts.map(String.init) ?? "-",
            summary.commandID ?? summary.messageID ?? "-",
        ].map(dlqSafe)
    }
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
        }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}

func dlqPrettyBody(_ body: [UInt8]) -> String {
    if let object = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]),
        let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
        let text = String(data: pretty, encoding: .utf8)
    {
        return DeadLetterExport.terminalSafe(text, keepingLines: true)
    }
    if let text = String(validating: body, as: UTF8.self) {
        return DeadLetterExport.terminalSafe(text, keepingLines: true)
    }
    return "<not UTF-8; base64> " + Data(body).base64EncodedString()
}
