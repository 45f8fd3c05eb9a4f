import Hummingbird

/// Adds the browser hardening headers to every answer of `serve`'s public port (pages, JSON, redirects and
/// errors such as 404): a Content-Security-Policy that allows nothing but the pages' inline style and forms
/// posting to `serve` itself, and no framing; `Referrer-Policy: no-referrer` (signed links never leak in a
/// `Referer`); `X-Content-Type-Options: nosniff`.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    /// The policy: the pages use one inline `<style>` block and no scripts, images or frames.
    static var contentSecurityPolicy: String {
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }
}
