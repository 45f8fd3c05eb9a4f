import AMQP
import Testing

@Suite("AMQPConfiguration URL parsing")
struct AMQPConfigurationTests {
    @Test func defaults() throws {
        let configuration = try AMQPConfiguration(url: "amqp://broker.internal")
        #expect(configuration.host == "broker.internal")
        #expect(configuration.port == 5672)
        #expect(configuration.username == "guest")
        #expect(configuration.password == "guest")
        #expect(configuration.virtualHost == "/")
        #expect(configuration.useTLS == false)
        #expect(configuration.heartbeat == .seconds(30))
        #expect(configuration.connectionName == "klaviyo-relay")
        #expect(configuration.tlsVerifyPeer && configuration.tlsVerifyHostname)
    }

    @Test func fullURLWithPercentDecoding() throws {
        let configuration = try AMQPConfiguration(url: "amqp://us%40er:p%3Ass%2Fw@rabbit:5673/%2f")
        #expect(configuration.username == "us@er")
        #expect(configuration.password == "p:ss/w")
        #expect(configuration.host == "rabbit")
        #expect(configuration.port == 5673)
        #expect(configuration.virtualHost == "/")
        let named = try AMQPConfiguration(url: "amqp://u:p@rabbit/relay%2Fprod")
        #expect(named.virtualHost == "relay/prod")
        let trailingSlash = try AMQPConfiguration(url: "amqp://rabbit/")
        #expect(trailingSlash.virtualHost == "/")
    }

    @Test func amqpsDefaultsToTLSPort() throws {
        let configuration = try AMQPConfiguration(url: "amqps://relay:secret@mq.example.com/prod")
        #expect(configuration.useTLS)
        #expect(configuration.port == 5671)
        #expect(configuration.virtualHost == "prod")
        #expect(configuration.tlsCACertificatePath == nil)
        let explicitPort = try AMQPConfiguration(url: "AMQPS://mq.example.com:15671")
        #expect(explicitPort.useTLS && explicitPort.port == 15671)
    }

    @Test func ipv6Host() throws {
        let configuration = try AMQPConfiguration(url: "amqp://[::1]:5680/")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 5680)
    }

    @Test(arguments: [
        "http://rabbit", "rabbit:5672", "amqp://", "amqp://:5672", "amqp://rabbit:notaport",
        "amqp://rabbit:70000", "amqp://rabbit/a/b", "amqp://u:p%zz@rabbit", "amqp://rabbit/%2", "amqp://[::1",
    ])
    func badURLsAreRejected(url: String) {
        #expect {
            _ = try AMQPConfiguration(url: url)
        } throws: { error in
            (error as? AMQPError)?.code == .invalidURL
        }
    }

    @Test func descriptionRedactsPassword() throws {
        let configuration = try AMQPConfiguration(url: "amqp://relay:hunter2-secret@rabbit:5672/%2f")
        #expect(!configuration.description.contains("hunter2"))
        #expect(configuration.description.contains("relay"))
        #expect(configuration.description.contains("rabbit:5672"))
    }

    @Test func nodeListKeepsOrderAndSharedSettings() throws {
        let configuration = try AMQPConfiguration(
            url: "amqp://relay:s%2Cecret@rabbit-0:5681/prod, amqp://relay:s%2Cecret@rabbit-1/prod,"
                + "amqp://relay:s%2Cecret@[::1]:5683/prod")
        #expect(
            configuration.nodes == [
                .init(host: "rabbit-0", port: 5681), .init(host: "rabbit-1", port: 5672),
                .init(host: "::1", port: 5683),
            ])
        #expect(configuration.host == "rabbit-0" && configuration.port == 5681)
        #expect(configuration.username == "relay" && configuration.password == "s,ecret")
        #expect(configuration.virtualHost == "prod" && !configuration.useTLS)
        #expect(configuration.startsAtRandomNode)
        let description = configuration.description
        #expect(!description.contains("ecret"))
        #expect(description.hasPrefix("amqp://relay:***@rabbit-0:5681/prod,amqp://relay:***@rabbit-1:5672/prod,"))
        #expect(description.contains("amqp://relay:***@[::1]:5683/prod"))
    }

    @Test func singleURLIsOneNode() throws {
        let configuration = try AMQPConfiguration(url: "amqps://u:p@mq.example.com/vh")
        #expect(configuration.nodes == [.init(host: "mq.example.com", port: 5671)])
        #expect(configuration.useTLS)
        #expect(AMQPConfiguration(host: "h", port: 1).nodes == [.init(host: "h", port: 1)])
    }

    @Test(arguments: [
        "amqp://a:1,amqps://b:2", "amqp://u:p@a,amqp://u:q@b", "amqp://u:p@a/x,amqp://u:p@b/y", "amqp://u:p@a,amqp://b",
        "amqp://a,", "amqp://a,,amqp://b", "amqp://a,http://b", "amqp://a,amqp://b:99999",
    ])
    func badNodeListsAreRejected(url: String) {
        #expect {
            _ = try AMQPConfiguration(url: url)
        } throws: { error in
            guard let error = error as? AMQPError else { return false }
            return error.code == .invalidURL && !error.message.contains("p@") && !error.message.contains(":q")
        }
    }

    @Test func nodeListErrorsNameTheNodeNotThePassword() {
        #expect {
            _ = try AMQPConfiguration(url: "amqp://u:topsecret@a,amqp://u:topsecret@b:notaport")
        } throws: { error in
            let message = (error as? AMQPError)?.message ?? ""
            return message.contains("node 2 of 2") && message.contains("bad port") && !message.contains("topsecret")
        }
    }

    @Test func topologyMerging() {
        let first = AMQPTopology(exchanges: [.init(name: "a", type: .topic)], queues: [.init(name: "q1")])
        let second = AMQPTopology(
            queues: [.init(name: "q2", arguments: ["x-queue-type": .string("quorum")])],
            bindings: [.init(queue: "q2", exchange: "a", routingKey: "#")])
        let merged = first + second
        #expect(merged.exchanges.map(\.name) == ["a"])
        #expect(merged.queues.map(\.name) == ["q1", "q2"])
        #expect(merged.bindings.count == 1)
        #expect(first.merging(second).queues == merged.queues)
    }
}
