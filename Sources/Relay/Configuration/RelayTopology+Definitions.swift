import AMQP

extension RelayTopology {
    /// The RabbitMQ version the definitions file is written for (its `rabbit_version`).
    public static let definitionsRabbitMQVersion = "3.10.8"

    /// The topology as a RabbitMQ definitions file for `vhost` (`rabbitmqctl import_definitions`): exchanges,
    /// queues, bindings and, in ``Mode/policies`` mode, ``policies``; no users or permissions. Keys in a fixed
    /// order and two-space indentation, so the output is stable: `deploy/rabbitmq/definitions.json` is exactly
    /// `klaviyo-relay setup --print-definitions` (policies mode, prefix `klaviyo`, vhost `/`).
    public func definitionsJSON(vhost: String = "/") -> String {
        let topology = amqpTopology
        let exchanges: [OrderedJSON] = topology.exchanges.map { exchange in
            .object([
                ("name", .string(exchange.name)), ("vhost", .string(vhost)), ("type", .string(exchange.type.rawValue)),
                ("durable", .bool(exchange.durable)), ("auto_delete", .bool(exchange.autoDelete)),
                ("internal", .bool(exchange.internal)), ("arguments", Self.orderedArguments(exchange.arguments)),
            ])
        }
        let queues: [OrderedJSON] = topology.queues.map { queue in
            .object([
                ("name", .string(queue.name)), ("vhost", .string(vhost)), ("durable", .bool(queue.durable)),
                ("auto_delete", .bool(queue.autoDelete)), ("arguments", Self.orderedArguments(queue.arguments)),
            ])
        }
        let bindings: [OrderedJSON] = topology.bindings.map { binding in
            .object([
                ("source", .string(binding.exchange)), ("vhost", .string(vhost)),
                ("destination", .string(binding.queue)), ("destination_type", .string("queue")),
                ("routing_key", .string(binding.routingKey)), ("arguments", Self.orderedArguments(binding.arguments)),
            ])
        }
        let policies: [OrderedJSON] =
            mode == .policies
            ? self.policies.map { policy in
                .object([
                    ("vhost", .string(vhost)), ("name", .string(policy.name)), ("pattern", .string(policy.pattern)),
                    ("apply-to", .string(policy.applyTo.rawValue)), ("priority", .int(Int64(policy.priority))),
                    ("definition", .object(policy.definition.map { ($0.key, OrderedJSON($0.value)) })),
                ])
            } : []
        let document = OrderedJSON.object([
            ("rabbit_version", .string(Self.definitionsRabbitMQVersion)),
            ("rabbitmq_version", .string(Self.definitionsRabbitMQVersion)),
            ("exchanges", .array(exchanges)), ("queues", .array(queues)), ("bindings", .array(bindings)),
            ("policies", .array(policies)),
        ])
        var output = ""
        document.write(into: &output, indent: "")
        return output + "\n"
    }

    /// Arguments in a stable order: `x-queue-type` first, then by name.
    private static func orderedArguments(_ table: AMQPTable) -> OrderedJSON {
        let keys = table.keys.sorted { ($0 == "x-queue-type" ? 0 : 1, $0) < ($1 == "x-queue-type" ? 0 : 1, $1) }
        return .object(
            keys.map { key in
                switch table[key] {
                case .string(let text): return (key, .string(text))
                case .int(let number): return (key, .int(number))
                case .bool(let flag): return (key, .bool(flag))
                default: return (key, .string("\(table[key]!)"))
                }
            })
    }
}

/// JSON whose object members keep their order (the definitions file is compared byte for byte).
private indirect enum OrderedJSON {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case array([OrderedJSON])
    case object([(String, OrderedJSON)])

    init(_ value: PolicyValue) {
        switch value {
        case .string(let text): self = .string(text)
        case .int(let number): self = .int(number)
        }
    }

    func write(into output: inout String, indent: String) {
        switch self {
        case .string(let text): output += Self.quoted(text)
        case .int(let number): output += String(number)
        case .bool(let flag): output += flag ? "true" : "false"
        case .array(let elements):
            guard !elements.isEmpty else {
                output += "[]"
                return
            }
            output += "[\n"
            for (position, element) in elements.enumerated() {
                output += indent + "  "
                element.write(into: &output, indent: indent + "  ")
                output += position == elements.count - 1 ? "\n" : ",\n"
            }
            output += indent + "]"
        case .object(let members):
            guard !members.isEmpty else {
                output += "{}"
                return
            }
            output += "{\n"
            for (position, (key, value)) in members.enumerated() {
                output += indent + "  " + Self.quoted(key) + ": "
                value.write(into: &output, indent: indent + "  ")
                output += position == members.count - 1 ? "\n" : ",\n"
            }
            output += indent + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }
}
