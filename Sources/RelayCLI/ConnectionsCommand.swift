import ArgumentParser
import Foundation
import Relay

/// `klaviyo-relay connections …`: connect accounts with API keys, inspect and remove connections.
struct ConnectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connections", abstract: "Manage connected Klaviyo accounts.",
        subcommands: [AddAPIKey.self, OAuthURL.self, OAuthCallback.self, Show.self, Remove.self, Rekey.self, Keys.self])

    struct AddAPIKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-api-key",
            abstract:
                "Validate a private API key against Klaviyo (GET /api/accounts) and store it encrypted (replacing, and "
                + "revoking, an OAuth connection).")

        @OptionGroup var options: GlobalOptions

        @Option(help: "HeroPixel account id.")
        var account: String

        @Option(help: "The private API key (pk_…); '-' reads it from standard input (keeps it out of shell history).")
        var apiKey: String

        func run() async throws {
            let runtime = try Runtime.make(
                options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            var key = apiKey
            if key == "-" { key = readLine(strippingNewline: true) ?? "" }
            let apiKey = key
            let account = self.account
            let connector = APIKeyConnector(klaviyo: runtime.klaviyo, store: runtime.credentialStore)
            let lifecycle = runtime.connectionLifecycle()
            let record: ConnectionRecord
            do {
                // As `serve` connects: under the account's lock, revoking a replaced OAuth grant at Klaviyo, and
                // publishing `connection.connected`.
                record = try await runtime.withAMQP {
                    try await lifecycle.connectAPIKey(accountID: account, apiKey: apiKey, connector: connector)
                }
            } catch let failure as APIKeyConnector.Failure {
                // The operator sees what went wrong underneath too (people on the settings page do not).
                throw CLIError(
                    "could not connect \(account): \(failure.description)"
                        + (failure.underlying.map { " (\($0))" } ?? ""))
            } catch {
                throw CLIError("could not connect \(account): \(error)")
            }
            print(
                "connected \(record.accountID) to \(klaviyoAccountLabel(record)) with a private API key"
            )
        }
    }

    struct OAuthURL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "oauth-url",
            abstract:
                "Print a Klaviyo authorize URL (PKCE S256) for an account; its state is kept in Redis for 10 minutes.")

        @OptionGroup var options: GlobalOptions

        @Option(help: "HeroPixel account id.")
        var account: String

        @Option(help: "Space-separated scopes (default: the least-privilege set for the relay's commands).")
        var scope = OAuthConnector.defaultScopes

        func run() async throws {
            let runtime = try Runtime.make(
                options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            let connector = try runtime.oauthConnector()
            let started = try await connector.start(accountID: account, scope: scope)
            await runtime.redis.shutdown()
            await runtime.http.shutdown()
            print(started.url)
        }
    }

    struct OAuthCallback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "oauth-callback",
            abstract: "Finish an OAuth connection with the code and state Klaviyo redirected back with.")

        @OptionGroup var options: GlobalOptions

        @Option(help: "The `code` query parameter of the redirect (as --code=VALUE: a value may start with '-').")
        var code: String

        @Option(help: "The `state` query parameter of the redirect (as --state=VALUE).")
        var state: String

        func run() async throws {
            let runtime = try Runtime.make(
                options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            let connector = try runtime.oauthConnector()
            let lifecycle = runtime.connectionLifecycle()
            let (code, state) = (self.code, self.state)
            let record: ConnectionRecord
            do {
                // As `serve`'s callback connects: under the account's lock, revoking a replaced grant to another
                // Klaviyo account, and publishing `connection.connected`.
                record = try await runtime.withAMQP {
                    try await lifecycle.completeOAuth(code: code, state: state, connector: connector)
                }
            } catch {
                throw CLIError("could not connect: \(error)")
            }
            print("connected \(record.accountID) to \(klaviyoAccountLabel(record)) with OAuth")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show a connection (never its secrets).")

        @OptionGroup var options: GlobalOptions

        @Option(help: "HeroPixel account id.")
        var account: String

        func run() async throws {
            let runtime = try Runtime.make(
                options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            let record = try await runtime.credentialStore.load(accountID: account)
            await runtime.redis.shutdown()
            await runtime.http.shutdown()
            guard let record else { throw CLIError("\(account) is not connected") }
            print("account:           \(record.accountID)")
            print("method:            \(record.method.rawValue)")
            print("state:             \(record.state.rawValue)")
            let klaviyoAccount = klaviyoText(record.klaviyoAccountID ?? "-")
            print("klaviyo account:   \(klaviyoAccount) (\(klaviyoText(record.klaviyoAccountName ?? "-")))")
            print("connected at:      \(record.connectedAt ?? "-")")
            if record.method == .oauth {
                print("scope:             \(klaviyoText(record.scope ?? "-"))")
                print("token expires at:  \(record.expiresAt.map { "\($0) (Unix seconds)" } ?? "-")")
            }
            print("version:           \(record.version)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract:
                "Disconnect an account as the settings page does: revoke its OAuth grant at Klaviyo, forget its secrets."
        )

        @OptionGroup var options: GlobalOptions

        @Option(help: "HeroPixel account id.")
        var account: String

        func run() async throws {
            let runtime = try Runtime.make(
                options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            let lifecycle = runtime.connectionLifecycle()
            let account = self.account
            let changed: Bool
            do {
                // As `serve` disconnects: under the account's lock, revoking an OAuth grant at Klaviyo first (a
                // transient failure keeps the connection: run it again), and publishing `connection.disconnected`.
                changed = try await runtime.withAMQP {
                    try await lifecycle.disconnect(accountID: account, reason: "disconnected by an operator")
                }
            } catch {
                throw CLIError("could not disconnect \(account): \(error)")
            }
            print(changed ? "disconnected \(account)" : "\(account) was not connected")
        }
    }

    struct Rekey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rekey",
            abstract: "Re-encrypt every stored connection under the current key of RELAY_ENCRYPTION_KEY.",
            discussion: """
                Scans every kr:{*}:conn hash and seals each secret field not under the current key id again, \
                version-checked (a concurrent token refresh is never overwritten). Idempotent; resumable with \
                --cursor (each progress line prints the cursor to resume from). Accounts that cannot be decrypted \
                are listed and skipped; the exit code is then 1.
                """)

        @OptionGroup var options: GlobalOptions

        @Option(help: "SCAN cursor to resume from (printed by an earlier, interrupted run).")
        var cursor = "0"

        @Option(help: "Print progress every N accounts.")
        var progressEvery = 100

        @Option(help: "SCAN COUNT hint (keys examined per page).")
        var scanCount = 200

        @Flag(help: "Decrypt and count only; write nothing.")
        var dryRun = false

        @Option(help: "Only account ids matching this Redis glob (default: every account).")
        var accounts = "*"

        func run() async throws {
            guard cursor.allSatisfy(\.isNumber), !cursor.isEmpty else {
                throw CLIError("--cursor must be the number a previous run printed")
            }
            guard !accounts.isEmpty, !accounts.contains("}") else { throw CLIError("--accounts: a glob without '}'") }
            let runtime = try Runtime.make(
                options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            var rekey = CredentialRekey(store: runtime.credentialStore, dryRun: dryRun)
            rekey.scanCount = max(1, scanCount)
            rekey.accounts = accounts
            let keyID = runtime.credentialStore.keys.currentKeyID
            print("\(dryRun ? "dry run: " : "")re-encrypting connections under key id \(keyID)")
            let dryRun = self.dryRun
            let result: Result<CredentialRekey.Progress, any Error>
            do {
                result = .success(
                    try await rekey.run(
                        from: cursor, progressEvery: max(1, progressEvery),
                        report: { print($0.line(dryRun: dryRun)) },
                        unreadable: {
                            print(
                                "unreadable: account \($0.accountID) field \($0.field) key id "
                                    + "\($0.keyID.isEmpty ? "-" : $0.keyID) (\($0.reason.rawValue)): skipped")
                        }))
            } catch {
                result = .failure(error)
            }
            await runtime.redis.shutdown()
            await runtime.http.shutdown()
            let progress: CredentialRekey.Progress
            switch result {
            case .success(let done): progress = done
            case .failure(let error): throw CLIError("rekey interrupted: \(error) (resume with the cursor above)")
            }
            if progress.reencrypted == 0 && !progress.hasFailures {
                print("nothing to do: every stored secret is already under key id \(keyID)")
            }
            for accountID in progress.contended {
                print("contended: account \(accountID) kept changing during the rekey; run rekey again")
            }
            if progress.hasFailures {
                throw CLIError(
                    "\(progress.unreadable.count + progress.contended.count) account(s) were not re-encrypted "
                        + "(see above); run `klaviyo-relay connections keys` for the key ids in use")
            }
        }
    }

    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keys",
            abstract: "List the encryption key ids stored connections use, and which configured keys can be retired.")

        @OptionGroup var options: GlobalOptions

        @Flag(help: "Machine-readable JSON.")
        var json = false

        @Option(help: "Only account ids matching this Redis glob (default: every account).")
        var accounts = "*"

        func run() async throws {
            guard !accounts.isEmpty, !accounts.contains("}") else { throw CLIError("--accounts: a glob without '}'") }
            let runtime = try Runtime.make(
                options, label: "klaviyo-relay.connections", connectionName: "klaviyo-relay connections")
            let result: Result<CredentialKeyUsage, any Error>
            do {
                result = .success(
                    try await CredentialKeyUsage.survey(store: runtime.credentialStore, accounts: accounts))
            } catch {
                result = .failure(error)
            }
            await runtime.redis.shutdown()
            await runtime.http.shutdown()
            let usage: CredentialKeyUsage
            switch result {
            case .success(let value): usage = value
            case .failure(let error): throw CLIError("could not scan the connections: \(error)")
            }
            if json {
                print(String(decoding: usage.json.jsonBytes(), as: UTF8.self))
            } else {
                for line in usage.report { print(line) }
            }
        }
    }
}

/// Text Klaviyo (or the customer, who names their Klaviyo account) chose, made safe for the operator's terminal:
/// control characters and bidi overrides escaped, as `dlq` prints dead letters
/// (``DeadLetterExport/terminalSafe(_:keepingLines:)``), so an account name cannot drive the terminal.
func klaviyoText(_ text: String) -> String { DeadLetterExport.terminalSafe(text) }

/// "Klaviyo account <id> (<name>)", terminal-safe.
func klaviyoAccountLabel(_ record: ConnectionRecord) -> String {
    "Klaviyo account \(klaviyoText(record.klaviyoAccountID ?? "?")) (\(klaviyoText(record.klaviyoAccountName ?? "unnamed")))"
}
