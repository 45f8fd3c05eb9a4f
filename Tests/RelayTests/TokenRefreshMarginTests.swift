import Testing

@testable import Relay

@Suite("Token refresh margin")
struct TokenRefreshMarginTests {
    @Test(arguments: [
        // (configured, lifetime, margin): an hour-long token keeps the configured 5 minutes.
        (Int64(300), Int64(3600), Int64(300)),
        // A token issued for 4 minutes is refreshed after 2, not at once.
        (300, 240, 120),
        (300, 600, 300),
        (300, 1, 0),
    ])
    func theMarginIsAtMostHalfTheTokensLifetime(configured: Int64, lifetime: Int64, margin: Int64) {
        let refreshedAt: Int64 = 1_800_000_000
        #expect(
            TokenManager.refreshMargin(
                configured: configured, expiresAt: refreshedAt + lifetime, refreshedAt: refreshedAt) == margin)
        // Freshly stored, it is fresh: the next command does not refresh it again.
        #expect(refreshedAt + lifetime > refreshedAt + margin)
    }

    @Test func withoutARefreshTimeOrWithAnExpiredTokenTheConfiguredMarginHolds() {
        #expect(TokenManager.refreshMargin(configured: 300, expiresAt: 1_800_000_000, refreshedAt: nil) == 300)
        #expect(
            TokenManager.refreshMargin(configured: 300, expiresAt: 1_800_000_000, refreshedAt: 1_800_000_100) == 300)
    }
}
