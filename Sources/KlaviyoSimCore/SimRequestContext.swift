public import Hummingbird
public import NIOCore

/// Request context that keeps the channel, so a `reset` fault can drop the connection without a response.
public struct SimRequestContext: RequestContext {
    /// Hummingbird's core storage.
    public var coreContext: CoreRequestContextStorage
    /// The connection this request came on.
    public let channel: any Channel

    /// Creates the context for one request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// Bodies up to Klaviyo's 5 MB payload cap.
    public var maxUploadSize: Int { 5 * 1024 * 1024 }
}
