import Hummingbird
import Relay

/// The OAuth start and callback pages (signed start links, the state bound to the browser's cookie).
extension RelayHTTP {
    /// The start: a 302 to Klaviyo's authorize URL that sets the browser cookie (never cached: it carries the
    /// state); beyond the account's start limit a 429 page with `Retry-After` (no state stored, no cookie).
    func oauthStart(_ request: Request) async -> Response {
        let link: SignedLink
        do { link = try signedLink(.oauthStart, query(request)) } catch { return refusalPage(error) }
        guard let connector = dependencies.oauthConnector else {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Klaviyo sign-in unavailable",
                body:
                    "<p class=\"error\">Connecting with Klaviyo is not configured on this server. Use an API key instead.</p>"
                    + HTMLPage.backLink(link.returnTo))
        }
        let nonce = OAuthBrowserCookie.makeNonce()
        do {
            let started = try await connector.start(
                accountID: link.accountID, returnTo: link.returnTo,
                browserBinding: OAuthConnector.browserBinding(for: nonce), linkExpires: link.expires)
            var response = Response(status: .found, headers: [.location: started.url, .cacheControl: "no-store"])
            response.headers[.setCookie] = OAuthBrowserCookie.set(nonce, lifetime: connector.stateLifetime)
            return response
        } catch let failure as OAuthConnector.Failure where failure.code == "too_many_starts" {
            dependencies.logger.warning(
                "OAuth starts limited", metadata: [LogKeys.accountID: "\(link.accountID)"])
            var response = HTMLPage.response(
                status: .tooManyRequests, title: "Please wait a moment",
                body: "<p class=\"error\" id=\"message\">\(HTMLPage.escape(failure.description))</p>"
                    + HTMLPage.backLink(link.returnTo))
            response.headers[.retryAfter] = String((failure.retryAfter ?? .seconds(60)).components.seconds)
            return response
        } catch {
            dependencies.logger.error(
                "could not start OAuth", metadata: ["account_id": "\(link.accountID)", "error": "\(error)"])
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Please try again",
                body: "<p class=\"error\">We could not start connecting Klaviyo just now. Please try again.</p>"
                    + HTMLPage.backLink(link.returnTo))
        }
    }

    /// The callback: consumes the state, then completes only in the browser that started the flow (its cookie
    /// nonce matches the state's binding); Klaviyo's `error` is shown as a fixed message, never echoed. Every
    /// answer clears the cookie.
    func oauthCallback(_ request: Request) async -> Response {
        var response = await oauthCallbackPage(request)
        response.headers[.setCookie] = OAuthBrowserCookie.clear
        return response
    }

    func oauthCallbackPage(_ request: Request) async -> Response {
        let parameters = query(request)
        guard let connector = dependencies.oauthConnector else {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Klaviyo sign-in unavailable",
                body: "<p class=\"error\">Connecting with Klaviyo is not configured on this server.</p>")
        }
        let context: OAuthConnector.StateContext?
        do {
            context = try await connector.takeState(parameters["state"] ?? "")
        } catch {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Please try again",
                body: "<p class=\"error\">We could not finish connecting Klaviyo just now. Please start again.</p>")
        }
        guard let context else {
            return HTMLPage.response(
                status: .badRequest, title: "Link expired or already used",
                body: "<p class=\"error\">This Klaviyo sign-in has expired, was already used, or did not start here. "
                    + "Nothing was stored. Open Klaviyo settings from your HeroPixel dashboard and connect again.</p>")
        }
        guard context.isBound(to: OAuthBrowserCookie.nonce(in: request)) else {
            dependencies.logger.warning(
                "OAuth callback from a browser that did not start the flow; refused",
                metadata: ["account_id": "\(context.accountID)"])
            return HTMLPage.response(
                status: .forbidden, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">This Klaviyo sign-in was not started in this browser, so "
                    + "nothing was connected and nothing was stored. To connect Klaviyo, open Klaviyo settings from "
                    + "your own HeroPixel dashboard.</p>")
        }
        let back = context.returnTo.map { HTMLPage.backLink($0) } ?? ""
        let again = startAgainLink(context)
        if let error = parameters["error"] {
            return HTMLPage.response(
                status: .ok, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">\(HTMLPage.escape(Self.oauthErrorMessage(error)))</p>" + again
                    + back)
        }
        guard let code = parameters["code"], !code.isEmpty else {
            return HTMLPage.response(
                status: .badRequest, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">Klaviyo sent no authorization code. Nothing was stored.</p>"
                    + again + back)
        }
        do {
            let record = try await dependencies.lifecycle.connectOAuth(
                code: code, context: context, connector: connector)
            dependencies.logger.info("connected with OAuth", metadata: [LogKeys.accountID: "\(record.accountID)"])
            if let returnTo = context.returnTo { return Response(status: .found, headers: [.location: returnTo]) }
            return HTMLPage.response(status: .ok, title: "Klaviyo connected", body: "<p>Klaviyo is connected.</p>")
        } catch let failure as OAuthConnector.Failure {
            dependencies.logger.warning(
                "could not finish connecting with OAuth",
                metadata: [
                    LogKeys.accountID: "\(context.accountID)", LogKeys.errorCode: "\(failure.code)",
                    LogKeys.errorDetail: "\(failure.description)",
                ])
            let message =
                failure.code == "invalid_grant"
                ? "The Klaviyo authorization expired or was already used. Nothing was stored; please connect again."
                : "We could not finish connecting Klaviyo. Nothing was stored; please try again."
            let status: HTTPResponse.Status =
                switch failure.code {
                case "invalid_grant": .badRequest
                case "connection_busy": .serviceUnavailable
                default: .badGateway
                }
            return HTMLPage.response(
                status: status, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">\(HTMLPage.escape(message))</p>" + again + back)
        } catch {
            dependencies.logger.error(
                "could not finish connecting with OAuth",
                metadata: [LogKeys.accountID: "\(context.accountID)", LogKeys.errorDetail: "\(error)"])
            return HTMLPage.response(
                status: .badGateway, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">We could not finish connecting Klaviyo. Please try again.</p>"
                    + again + back)
        }
    }

    /// The message for Klaviyo's `error` parameter (RFC 6749 §4.1.2.1 codes): fixed text per known code, one
    /// generic text otherwise. Neither `error` nor `error_description` is ever shown.
    static func oauthErrorMessage(_ code: String) -> String {
        switch code {
        case "access_denied":
            "You cancelled connecting Klaviyo, so HeroPixel was not connected. Nothing was stored."
        case "invalid_request":
            "Klaviyo could not process the sign-in request. Nothing was stored. Please try again; if it keeps "
                + "happening, contact HeroPixel support."
        case "unauthorized_client":
            "Klaviyo does not allow HeroPixel to connect this way right now. Nothing was stored. Please contact "
                + "HeroPixel support."
        case "invalid_scope":
            "Klaviyo did not grant the permissions HeroPixel needs. Nothing was stored. Please connect again and "
                + "allow the requested access."
        case "server_error":
            "Klaviyo had a problem completing the sign-in. Nothing was stored. Please try again."
        case "temporarily_unavailable":
            "Klaviyo is temporarily unavailable. Nothing was stored. Please try again in a few minutes."
        default:
            "Klaviyo did not connect HeroPixel. Nothing was stored. Please try again."
        }
    }

    /// A start link for the same account and return URL with the ORIGINAL link's expiry (so a failed flow cannot
    /// renew a link), when signing is configured and that link has not expired yet.
    func startAgainLink(_ context: OAuthConnector.StateContext) -> String {
        guard let secret = configuration.linkSecret, let returnTo = context.returnTo,
            let expires = context.linkExpires, expires >= Timestamp.nowSeconds()
        else { return "" }
        let link = SignedLink.sign(
            action: .oauthStart, accountID: context.accountID, returnTo: returnTo, expires: expires, secret: secret)
        return "<p><a id=\"start-again\" href=\"\(HTMLPage.escape(link.pathAndQuery))\">"
            + "Connect with Klaviyo again</a></p>"
    }
}
