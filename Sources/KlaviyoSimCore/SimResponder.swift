public import Hummingbird

/// The simulator's single HTTP entry point: `/_sim/…` admin calls, `/oauth/…` and `/api/…` Klaviyo calls.
public struct SimResponder: HTTPResponder {
    /// Context carrying the channel.
    public typealias Context = SimRequestContext

    let simulator: KlaviyoSimulator

    /// Answers one request.
    public func respond(to request: Request, context: SimRequestContext) async throws -> Response {
        let path = request.uri.path
        if path == "/_sim" || path.hasPrefix("/_sim/") {
            return await simulator.handleAdmin(request)
        }
        if path.hasPrefix("/oauth/") {
            return await simulator.handleOAuth(request)
        }
        return await simulator.handleAPI(request, context: context)
    }
}
