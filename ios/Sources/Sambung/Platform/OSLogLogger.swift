import Foundation
import os

/// The core's log events in the unified log (subsystem `id.sambung`). The
/// events carry no personal data; they are still logged as private by
/// default, so only a connected developer sees them.
public final class OSLogLogger: Logger, @unchecked Sendable {
    private let log = os.Logger(subsystem: "id.sambung", category: "core")

    public init() {}

    public func log(record: LogRecord) {
        let text = "\(record.target): \(record.message)"
        switch record.level {
        case .trace, .debug: log.debug("\(text, privacy: .private)")
        case .info: log.info("\(text, privacy: .private)")
        case .warn: log.warning("\(text, privacy: .private)")
        case .error: log.error("\(text, privacy: .private)")
        }
    }
}
