/// The HTTP methods the client sends. The cases keep the methods' own spelling (`.GET`, as on the wire), hence the
/// formatter exemptions below.
public enum HTTPMethod: String, Sendable, Hashable {
    /// `GET`
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case GET
    /// `POST`
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case POST
    /// `PUT`
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case PUT
    /// `PATCH`
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case PATCH
    /// `DELETE`
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case DELETE
    /// `HEAD` (the response has no body)
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case HEAD
}
