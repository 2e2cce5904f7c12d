//! The app's key provider (Android Keystore, the iOS Keychain, …) as a
//! callback: it hands over the store's 32-byte data key, created and kept by
//! the platform.

use std::sync::Arc;

use sambung_core::crypto::DataKey;
use zeroize::Zeroize;

/// Why a key provider could not give the key (its message must not contain
/// the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum KeyProviderError {
    /// The platform keystore failed or refused (locked, user not
    /// authenticated, key invalidated).
    #[error("the key provider failed: {reason}")]
    Failed {
        /// What failed.
        reason: String,
    },
}

/// Gives the store's data key. Implemented by the app.
#[uniffi::export(with_foreign)]
pub trait KeyProvider: Send + Sync {
    /// The 32-byte data key; created and stored by the provider on first
    /// use, the same bytes every time after.
    fn data_key(&self) -> Result<Vec<u8>, KeyProviderError>;
}

/// The app's provider seen as the core's.
pub(crate) struct Provider(pub Arc<dyn KeyProvider>);

impl sambung_core::crypto::KeyProvider for Provider {
    fn data_key(&self) -> Result<DataKey, String> {
        let mut bytes = self.0.data_key().map_err(|e| e.to_string())?;
        let key = <[u8; 32]>::try_from(bytes.as_slice())
            .map(DataKey::from_bytes)
            .map_err(|_| format!("the data key must be 32 bytes, not {}", bytes.len()));
        bytes.zeroize();
        key
    }
}
