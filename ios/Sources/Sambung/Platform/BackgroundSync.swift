import BackgroundTasks
import Foundation

/// Background sync with BGTaskScheduler. Register once at launch (before the
/// app finishes launching) and add the identifier to the app's Info.plist
/// under `BGTaskSchedulerPermittedIdentifiers`:
///
/// ```swift
/// BackgroundSync.register { try await Sambung.client() }
/// BackgroundSync.schedule()
/// ```
public enum BackgroundSync {
    public static let identifier = "id.sambung.sync"

    /// Registers the handler: each run syncs and schedules the next; the
    /// sync is cancelled if iOS ends the task early (nothing is lost).
    public static func register(client: @escaping @Sendable () async throws -> Client) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            guard let task = task as? BGProcessingTask else { return }
            schedule()
            let work = Task {
                do {
                    _ = try await client().syncNow(progress: nil)
                    task.setTaskCompleted(success: true)
                } catch {
                    task.setTaskCompleted(success: false)
                }
            }
            task.expirationHandler = { work.cancel() }
        }
    }

    /// Asks for a run in `after` seconds or later, with a network.
    public static func schedule(after: TimeInterval = 15 * 60) {
        let request = BGProcessingTaskRequest(identifier: identifier)
        request.requiresNetworkConnectivity = true
        request.earliestBeginDate = Date(timeIntervalSinceNow: after)
        try? BGTaskScheduler.shared.submit(request)
    }
}
