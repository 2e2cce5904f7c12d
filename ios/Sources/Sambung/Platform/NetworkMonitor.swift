import Foundation
import Network

/// Tells the core when the network comes and goes and whether it is
/// expensive (cellular, a hotspot) or constrained (Low Data Mode): coming
/// back online syncs at once, large attachments wait on metered links.
public final class NetworkMonitor: @unchecked Sendable {
    private let monitor = NWPathMonitor()
    private let queue = DispatchQueue(label: "id.sambung.network")
    private let client: Client

    public init(client: Client) {
        self.client = client
    }

    public func start() {
        monitor.pathUpdateHandler = { [client] path in
            client.networkChanged(
                online: path.status == .satisfied,
                metered: path.isExpensive || path.isConstrained
            )
        }
        monitor.start(queue: queue)
    }

    public func stop() {
        monitor.cancel()
    }
}
