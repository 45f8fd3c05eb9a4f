import ArgumentParser
import Foundation
import Relay

/// `klaviyo-relay connections …`: connect accounts with API keys, inspect and remove connections.
struct ConnectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connections", abstract: "Manage connected Klaviyo accounts.",
        subcommands: [AddAPIKey.self, Show.self, Remove.self])

    struct AddAPIKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-api-key",
            abstract: "Validate a private API key against Klaviyo (GET /api/accounts) and store it encrypted.")

        @OptionGroup var options: GlobalOptions

        @Option(help: "HeroPixel account id.")
        var account: String

        @Option(help: "The private API key (pk_…); '-' reads it from standard input (keeps it out of shell history).")
        var apiKey: String

        func run() async throws {
            let runtime = try Runtime.make(options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            var key = apiKey
            if key == "-" { key = readLine(strippingNewline: true) ?? "" }
            let connector = APIKeyConnector(klaviyo: runtime.klaviyo, store: runtime.credentialStore)
            defer { Task { [runtime] in await runtime.redis.shutdown() } }
            do {
                let record = try await connector.connect(accountID: account, apiKey: key)
                print(
                    "connected \(record.accountID) to Klaviyo account \(record.klaviyoAccountID ?? "?") (\(record.klaviyoAccountName ?? "unnamed")) with a private API key"
                )
            } catch {
                throw CLIError("could not connect \(account): \(error.description)")
            }
            await runtime.http.shutdown()
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show a connection (never its secrets).")

        @OptionGroup var options: GlobalOptions

        @Option(help: "HeroPixel account id.")
        var account: String

        func run() async throws {
            let runtime = try Runtime.make(options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            let record = try await runtime.credentialStore.load(accountID: account)
            await runtime.redis.shutdown()
            await runtime.http.shutdown()
            guard let record else { throw CLIError("\(account) is not connected") }
            print("account:           \(record.accountID)")
            print("method:            \(record.method.rawValue)")
            print("state:             \(record.state.rawValue)")
            print("klaviyo account:   \(record.klaviyoAccountID ?? "-") (\(record.klaviyoAccountName ?? "-"))")
            print("connected at:      \(record.connectedAt ?? "-")")
            print("version:           \(record.version)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove", abstract: "Forget a connection's secrets (state becomes disconnected).")

        @OptionGroup var options: GlobalOptions

        @Option(help: "HeroPixel account id.")
        var account: String

        func run() async throws {
            let runtime = try Runtime.make(options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            let changed = try await runtime.credentialStore.changeState(accountID: account, to: .disconnected)
            await runtime.redis.shutdown()
            await runtime.http.shutdown()
            print(changed ? "disconnected \(account)" : "\(account) was not connected")
        }
    }
}
