import AMQP
import ArgumentParser
import Foundation
import Klaviyo
import Relay

/// `klaviyo-relay publish`: publishes commands from an NDJSON file or standard input (ops, demos, load
/// tests), optionally waiting for each command's result or dead letter.
struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish commands (one JSON envelope per line) to the commands exchange.")

    @OptionGroup var options: GlobalOptions

    @Option(help: "NDJSON file to read; standard input when omitted or '-'.")
    var file: String?

    @Flag(help: "Wait for every command's result (or dead letter) and print it as a JSON line.")
    var wait = false

    @Option(help: "How long --wait waits, e.g. 30s or 2m.")
    var timeout = "60s"

    @Option(help: "Routing key for every line (default: each line's \"type\").")
    var routingKey: String?

    func run() async throws {
        let runtime = try Runtime.make(options, label: "klaviyo-relay.publish", connectionName: "klaviyo-relay publish")
        guard let waitLimit = RelayConfiguration.parseDuration(timeout) else {
            throw ValidationError("--timeout must be a duration such as 30s")
        }
        let lines = try readLines()
        var messages: [(id: String, message: AMQPMessage)] = []
        for (number, line) in lines.enumerated() {
            let body = Array(line.utf8)
            let document = try? JSONValue.parse(body)
            guard let key = routingKey ?? document?["type"]?.stringValue else {
                throw CLIError("line \(number + 1): no \"type\" to route by (pass --routing-key to publish it anyway)")
            }
            let id = document?["id"]?.stringValue ?? UUID().uuidString.lowercased()
            var properties = AMQPProperties()
            properties.contentType = "application/json"
            properties.persistent = true
            properties.messageID = id
            properties.correlationID = id
            messages.append(
                (
                    id,
                    AMQPMessage(
                        exchange: runtime.topology.commandsExchange, routingKey: key, body: body, properties: properties
                    )
                ))
        }
        let pending = Set(messages.map(\.id))
        let topology = runtime.topology
        let amqp = runtime.amqp
        let seal = HeaderSeal(keyRing: runtime.configuration.encryptionKeys)
        let code = try await runtime.withAMQP { () -> Int32 in
            var replyQueue: String?
            var consumer: AMQPConsumer?
            if wait {
                let name = "reply.\(topology.prefix).\(UUID().uuidString.lowercased())"
                var declaration = AMQPTopology()
                declaration.queues = [.init(name: name, durable: false, exclusive: true, autoDelete: true)]
                declaration.bindings = [.init(queue: name, exchange: topology.deadExchange, routingKey: "#")]
                try await amqp.declare(declaration)
                replyQueue = name
                consumer = amqp.consume(queue: name, prefetch: 500)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for (_, message) in messages {
                    var message = message
                    message.properties.replyTo = replyQueue
                    if inFlight >= 256 {
                        try await group.next()
                        inFlight -= 1
                    }
                    group.addTask { try await amqp.publish(message) }
                    inFlight += 1
                }
                try await group.waitForAll()
            }
            FileHandle.standardError.write(Data("published \(messages.count) command(s)\n".utf8))
            guard let consumer else { return 0 }
            return try await collect(
                consumer, pending: pending, amqp: amqp, limit: waitLimit, deadExchange: topology.deadExchange,
                seal: seal)
        }
        if code != 0 { throw ExitCode(code) }
    }

    /// Prints results and dead letters of our commands until all are in or the time is up.
    func collect(
        _ consumer: AMQPConsumer, pending: Set<String>, amqp: AMQPClient, limit: Duration, deadExchange: String,
        seal: HeaderSeal
    ) async throws -> Int32 {
        var pending = pending
        var failures = 0
        let deadline = Task {
            try await Task.sleep(for: limit)
            await consumer.cancel()
        }
        defer { deadline.cancel() }
        for try await delivery in consumer {
            try await amqp.ack(delivery)
            switch ReplyQueueDelivery(delivery, deadExchange: deadExchange, seal: seal) {
            case .deadLetter(let id, let code, let detail, _):
                guard pending.contains(id) else { continue }
                pending.remove(id)
                failures += 1
                print(
                    String(
                        decoding: JSONValue.object([
                            "command_id": .string(id),
                            "dead_letter": .object(["code": .string(code), "detail": .string(detail)]),
                        ]).jsonBytes(), as: UTF8.self))
            case .result(let result):
                guard pending.contains(result.commandID) else { continue }
                pending.remove(result.commandID)
                if result.outcome != .succeeded { failures += 1 }
                print(String(decoding: delivery.body, as: UTF8.self))
            case .unrecognized:
                continue
            }
            if pending.isEmpty { break }
        }
        if !pending.isEmpty {
            FileHandle.standardError.write(Data("timed out waiting for \(pending.count) command(s)\n".utf8))
            return 1
        }
        return failures == 0 ? 0 : 2
    }

    func readLines() throws -> [String] {
        let text: String
        if let file, file != "-" {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            text = String(decoding: data, as: UTF8.self)
        } else {
            var collected = ""
            while let line = readLine(strippingNewline: false) { collected += line }
            text = collected
        }
        return text.split(whereSeparator: \.isNewline).map(String.init).filter {
            !$0.trimmingCharacters(in: .whitespaces).isEmpty
        }
    }
}
