import Hummingbird
import Klaviyo
import Logging
import Relay

/// Adds the browser hardening headers to every answer of `serve`'s public port (pages, JSON, redirects and
/// errors such as 404 or 500): a Content-Security-Policy that allows nothing but the pages' inline style and forms
/// posting to `serve` itself, and no framing; `Referrer-Policy: no-referrer` (signed links never leak in a
/// `Referer`); `X-Content-Type-Options: nosniff`.
///
/// It is also where an error no route turned into an answer ends: an `HTTPResponseError` (404, 405, a too-large
/// body) answers as Hummingbird would; anything else (a Redis or Klaviyo client error a route let through) is
/// logged here and answered with a fixed 500 that tells the caller nothing about it.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    /// The policy: the pages use one inline `<style>` block and no scripts, images or frames.
    static var contentSecurityPolicy: String {
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    let logger: Logger

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            // The path only: a signed link's query carries its signature. Errors of this code base never carry
            // secrets in their descriptions (tokens and keys are redacted where they are made).
            logger.error(
                "request failed",
                metadata: [
                    "http.method": "\(request.method)", "http.path": "\(request.uri.path)",
                    "error.type": "\(String(reflecting: type(of: error)))", LogKeys.errorDetail: "\(error)",
                ])
            response = Self.internalError(path: request.uri.path)
        }
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }

    /// A fixed 500: the JSON API's error shape (`internal_error`) under `/v1/`, plain text elsewhere.
    static func internalError(path: String) -> Response {
        let message = "Something went wrong on our side. Please try again in a moment."
        let (type, body): (String, String) =
            path.hasPrefix("/v1/")
            ? (
                "application/json",
                String(
                    decoding: JSONValue.object([
                        "error": ["code": "internal_error", "message": .string(message)]
                    ]).jsonBytes(), as: UTF8.self)
            )
            : ("text/plain; charset=utf-8", message + "\n")
        return Response(
            status: .internalServerError, headers: [.contentType: type, .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
