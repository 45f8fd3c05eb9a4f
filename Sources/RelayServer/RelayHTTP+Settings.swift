import Hummingbird
import Relay

/// The settings page and its forms (API key, disconnect), opened with a signed link.
extension RelayHTTP {
    func settingsPage(_ request: Request) async -> Response {
        let link: SignedLink
        do { link = try signedLink(.settings, query(request)) } catch { return refusalPage(error) }
        return await renderSettings(link, error: nil)
    }

    func renderSettings(_ link: SignedLink, error: String?, status: HTTPResponse.Status = .ok) async -> Response {
        let record: ConnectionRecord?
        var unreadable = false
        do {
            record = try await dependencies.credentialStore.load(accountID: link.accountID)
        } catch let failure as CredentialUnreadable {
            dependencies.logger.warning(
                "settings page: stored connection cannot be read; offering to reconnect",
                metadata: ["account_id": "\(link.accountID)", "key_id": "\(failure.keyID)"])
            record = nil
            unreadable = true
        } catch {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Klaviyo settings",
                body:
                    "<p class=\"error\">We could not load your Klaviyo connection just now. Please reload the page.</p>"
            )
        }
        let hidden = [
            ("account_id", link.accountID), ("return_to", link.returnTo), ("expires", String(link.expires)),
            ("sig", link.signature),
        ].map { "<input type=\"hidden\" name=\"\($0.0)\" value=\"\(HTMLPage.escape($0.1))\">" }.joined()
        var body = ""
        if let error { body += "<p class=\"error\" id=\"message\">\(HTMLPage.escape(error))</p>" }
        if let record, record.state == .connected {
            let method = record.method == .oauth ? "Klaviyo sign-in (OAuth)" : "Private API key"
            body += """
                <h2 id="status">Connected</h2>
                <dl><dt>Klaviyo account</dt><dd id="klaviyo-account">\(HTMLPage.escape(record.klaviyoAccountName ?? "-")) (\(HTMLPage.escape(record.klaviyoAccountID ?? "-")))</dd>
                <dt>Method</dt><dd id="method">\(method)</dd><dt>Status</dt><dd>connected</dd></dl>
                \(await syncStatusSection(link.accountID))
                <form method="post" action="/settings/klaviyo/disconnect">\(hidden)<button id="disconnect" type="submit">Disconnect</button></form>
                <h3>Switch method</h3>
                """
        } else if unreadable {
            body += """
                <h2 id="status">Reconnect needed</h2>
                <p class="error" id="reconnect-reason">HeroPixel can no longer read the stored Klaviyo connection \
                (it was protected with a key this server no longer has). Syncing with Klaviyo is paused for this \
                account. Please connect again below; nothing else is lost.</p>
                """
        } else if record?.state == .reauthRequired {
            body += """
                <h2 id="status">Reconnect needed</h2>
                <p class="error" id="reconnect-reason">Klaviyo no longer accepts this connection (the app was \
                removed in Klaviyo, the key was deleted, or the access expired). Syncing with Klaviyo is stopped \
                for this account. Please connect again below.</p>
                \(await syncStatusSection(link.accountID))
                """
        } else {
            body += "<h2 id=\"status\">Not connected</h2>"
        }
        // The same account, return URL and expiry, signed for the OAuth start (a verified link implies a secret).
        let start = link.resigned(for: .oauthStart, secret: configuration.linkSecret ?? "")
        body += """
            <p><a id="connect" class="button" href="\(HTMLPage.escape(start.pathAndQuery))">Connect with Klaviyo</a></p>
            <form method="post" action="/settings/klaviyo/api-key">\(hidden)
            <label for="api_key">Or use a private API key</label>
            <input id="api_key" name="api_key" type="password" autocomplete="off" placeholder="pk_…">
            <button id="save-key" type="submit">Connect with API key</button></form>
            \(HTMLPage.backLink(link.returnTo))
            """
        return HTMLPage.response(status: status, title: "Klaviyo settings", body: body)
    }

    /// The sync status of the account, or a line saying it cannot be shown just now (Redis unavailable).
    func syncStatusSection(_ accountID: String) async -> String {
        do {
            let snapshot = try await SyncStatus(redis: dependencies.redis).snapshot(accountID: accountID)
            return SyncStatusView.html(snapshot, nowMilliseconds: Timestamp.nowMilliseconds())
        } catch {
            dependencies.logger.warning(
                "settings page: sync status unavailable", metadata: ["account_id": "\(accountID)"])
            return "<p id=\"sync-status\">The sync status cannot be shown just now; please reload the page.</p>"
        }
    }

    func settingsRedirect(_ link: SignedLink) -> Response {
        Response(status: .seeOther, headers: [.location: link.pathAndQuery])
    }

    func settingsAPIKey(_ request: Request) async -> Response {
        let fields = await form(request)
        let link: SignedLink
        do { link = try signedLink(.settings, fields) } catch { return refusalPage(error) }
        do {
            _ = try await dependencies.lifecycle.connectAPIKey(
                accountID: link.accountID, apiKey: fields["api_key"] ?? "", connector: dependencies.apiKeyConnector)
            return settingsRedirect(link)
        } catch let failure as APIKeyConnector.Failure {
            guard let retryAfter = failure.retryAfter else {
                return await renderSettings(link, error: failure.description, status: .unprocessableContent)
            }
            var response = await renderSettings(link, error: failure.description, status: .tooManyRequests)
            response.headers[.retryAfter] = String(retryAfter.components.seconds)
            return response
        } catch {
            return await renderSettings(
                link, error: "Something went wrong; please try again.", status: .serviceUnavailable)
        }
    }

    func settingsDisconnect(_ request: Request) async -> Response {
        let fields = await form(request)
        let link: SignedLink
        do { link = try signedLink(.settings, fields) } catch { return refusalPage(error) }
        do {
            try await dependencies.lifecycle.disconnect(accountID: link.accountID)
            return settingsRedirect(link)
        } catch let failure as ConnectionLifecycle.Failure {
            return await renderSettings(link, error: failure.description, status: .serviceUnavailable)
        } catch {
            return await renderSettings(
                link, error: "Something went wrong; please try again.", status: .serviceUnavailable)
        }
    }
}
