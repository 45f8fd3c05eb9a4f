import ArgumentParser

/// `klaviyo-relay`: the one binary of Klaviyo Relay (README, docs/operations.md).
@main
struct KlaviyoRelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "klaviyo-relay",
        abstract: "HeroPixel's gateway to Klaviyo: consumes commands from RabbitMQ and calls Klaviyo.",
        subcommands: [
            ConsumeCommand.self, SetupCommand.self, ConnectionsCommand.self, PublishCommand.self,
            GenerateKeyCommand.self,
            DLQCommand.self, ServeCommand.self, SignLinkCommand.self,
        ])
}

/// Options every subcommand that talks to the servers takes.
struct GlobalOptions: ParsableArguments {
    @Flag(help: "Development defaults: a fixed, public encryption key when RELAY_ENCRYPTION_KEY is unset, text logs.")
    var dev = false

    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical); overrides RELAY_LOG_LEVEL.")
    var logLevel: String?
}
