import Foundation
import Security

/// The store's 32-byte data key in the iOS Keychain: created on first use,
/// readable only after the first unlock since boot and only on this device
/// (never in iCloud Keychain, never in a backup restored elsewhere).
public final class KeychainKeyProvider: KeyProvider, @unchecked Sendable {
    private let service: String
    private let account: String
    private let lock = NSLock()

    public init(service: String = "id.sambung.store", account: String = "data-key") {
        self.service = service
        self.account = account
    }

    public func dataKey() throws -> Data {
        lock.lock()
        defer { lock.unlock() }
        if let key = try read() {
            return key
        }
        var key = Data(count: 32)
        let status = key.withUnsafeMutableBytes { SecRandomCopyBytes(kSecRandomDefault, 32, $0.baseAddress!) }
        guard status == errSecSuccess else {
            throw KeyProviderError.Failed(reason: "no randomness (\(status))")
        }
        let add: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
            kSecValueData as String: key,
        ]
        let added = SecItemAdd(add as CFDictionary, nil)
        guard added == errSecSuccess else {
            throw KeyProviderError.Failed(reason: "Keychain add failed (\(added))")
        }
        return key
    }

    private func read() throws -> Data? {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecReturnData as String: true,
            kSecMatchLimit as String: kSecMatchLimitOne,
        ]
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            return item as? Data
        case errSecItemNotFound:
            return nil
        default:
            // errSecInteractionNotAllowed: the phone has not been unlocked
            // since boot (a background sync too early).
            throw KeyProviderError.Failed(reason: "Keychain read failed (\(status))")
        }
    }
}
