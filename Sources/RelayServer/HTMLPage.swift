import Hummingbird

/// Plain server-rendered pages (no JavaScript, one inline style block: see ``SecurityHeaders``).
enum HTMLPage {
    static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    static func backLink(_ returnTo: String) -> String {
        "<p><a id=\"back\" href=\"\(escape(returnTo))\">Back to HeroPixel</a></p>"
    }

    static func response(status: HTTPResponse.Status, title: String, body: String) -> Response {
        let page = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}
            .error{color:#a40000;font-weight:600}.button,button{padding:.5rem 1rem}</style></head>
            <body><h1>\(escape(title))</h1>
            \(body)
            </body></html>
            """
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .init("X-Frame-Options")!: "DENY",
            ],
            body: .init(byteBuffer: ByteBuffer(string: page)))
    }
}
