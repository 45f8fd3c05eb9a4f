import Foundation
import RelayTestSupport

/// A real `klaviyo-relay` child process (``ChildProcess``), its log captured to a file.
typealias ConsumerProcess = ChildProcess

extension ChildProcess {
    /// Starts `klaviyo-relay <arguments>` (default `consume --dev`) with `variables` over the test's environment
    /// without its `RELAY_*` variables.
    static func start(variables: [String: String], arguments: [String] = ["consume", "--dev"]) throws -> ChildProcess {
        try start(
            executable: IntegrationEnvironment.relayBinary, arguments: arguments, variables: variables, label: "relay")
    }

    /// Everything the process logged so far.
    var log: String { output }
    /// The file holding its log.
    var logPath: String { outputPath }
}
