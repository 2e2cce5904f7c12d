//! The server's secrets, kept out of the database they protect: the key of
//! the NIK hashes and a master key that seals each webhook secret. They
//! live in a file of their own (`sambung server --secrets FILE`, by
//! default `DATA/secrets` for the SQLite file), readable by the service
//! account only; a dump of the database alone holds neither, so it does
//! not let anyone brute-force the NIK hashes or forge webhook signatures.
//!
//! The database keeps a check value of the NIK key (an HMAC under it, no
//! use without the key): a server given another file than the one the
//! database was started with refuses to start instead of hashing NIKs
//! that no longer match.
//!
//! Databases from before this file kept the NIK key in their `meta`
//! table: on the first start with a secrets file, the key is moved into
//! the file (hashes already stored keep working) and deleted from the
//! database; webhook secrets stored in clear are sealed.

use std::io::Write;
use std::path::Path;

use ring::aead;
use ring::hkdf;
use ring::hmac;
use sambung_core::crypto::DataKey;

use crate::error::ServerError;
use crate::storage::Storage;

/// The file's name in the data folder of a SQLite server.
pub const DEFAULT_FILE: &str = "secrets";

/// The first byte of a sealed webhook secret (a format version).
const SEALED_V1: u8 = 1;

/// The length of a webhook secret as stored before it was sealed.
const PLAIN_WEBHOOK_SECRET: usize = 32;

/// The secrets a server runs with.
pub struct Secrets {
    nik_key: DataKey,
    master: DataKey,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(…)")
    }
}

fn bad(why: impl Into<String>) -> ServerError {
    ServerError::Config(why.into())
}

fn random() -> Result<[u8; 32], ServerError> {
    sambung_core::crypto::random_key_bytes()
        .map_err(|_| ServerError::Storage("no randomness".into()))
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl Secrets {
    /// Fresh random secrets (kept in memory only; see [`Secrets::open`]).
    pub fn generate() -> Result<Secrets, ServerError> {
        Ok(Secrets {
            nik_key: DataKey::from_bytes(random()?),
            master: DataKey::from_bytes(random()?),
        })
    }

    /// Secrets from their two keys.
    pub fn from_keys(nik_key: [u8; 32], master: [u8; 32]) -> Secrets {
        Secrets {
            nik_key: DataKey::from_bytes(nik_key),
            master: DataKey::from_bytes(master),
        }
    }

    /// The key of the NIK hashes (HMAC-SHA256).
    pub fn nik_key(&self) -> &[u8; 32] {
        self.nik_key.expose()
    }

    /// Reads a secrets file: `nik_key = "<64 hex digits>"` and
    /// `master_key = "<64 hex digits>"` lines; `#` starts a comment.
    pub fn read(path: &Path) -> Result<Secrets, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad(format!(
                "cannot read the secrets file {}: {e}",
                path.display()
            ))
        })?;
        let mut nik = None;
        let mut master = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(bad(format!(
                    "the secrets file {} has a line that is not `name = \"value\"`",
                    path.display()
                )));
            };
            let value = value.trim().trim_matches('"');
            let key = hex::decode(value)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "{} in the secrets file {} must be 64 hex digits",
                        name.trim(),
                        path.display()
                    ))
                })?;
            match name.trim() {
                "nik_key" => nik = Some(key),
                "master_key" => master = Some(key),
                other => {
                    return Err(bad(format!(
                        "the secrets file {} has an unknown entry {other}",
                        path.display()
                    )));
                }
            }
        }
        match (nik, master) {
            (Some(n), Some(m)) => Ok(Secrets::from_keys(n, m)),
            _ => Err(bad(format!(
                "the secrets file {} needs nik_key and master_key",
                path.display()
            ))),
        }
    }

    /// Writes a new secrets file, readable and writable by its owner only;
    /// refuses to overwrite one. The file appears whole or not at all
    /// (written beside it, then linked into place), so a process starting
    /// at the same moment never reads half of it.
    pub fn write_new(&self, path: &Path) -> Result<(), ServerError> {
        let text = format!(
            "# Sambung server secrets: keep apart from the database and its backups.\n\
             # nik_key: the key of the NIK hashes (losing it unlinks every stored NIK hash).\n\
             # master_key: seals the webhook secrets in the database.\n\
             nik_key = \"{}\"\nmaster_key = \"{}\"\n",
            hex::encode(self.nik_key.expose()),
            hex::encode(self.master.expose()),
        );
        let failed = |e: std::io::Error| {
            bad(format!(
                "cannot create the secrets file {}: {e}",
                path.display()
            ))
        };
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{}.new", hex::encode(&random()?[..8])));
        let temp = std::path::PathBuf::from(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(&temp).and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
        let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
        let _ = std::fs::remove_file(&temp);
        linked.map_err(failed)?;
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The secrets of a server on `storage`, from the file at `path` —
    /// created (mode 0600) when absent — and the database brought in line:
    /// a NIK key still kept in the database (from before this file) is
    /// moved into a new file and deleted from the database (a file that
    /// holds another key is refused), the database's check value must
    /// match the file's key, and webhook secrets still stored in clear are
    /// sealed.
    pub fn open(path: &Path, storage: &dyn Storage) -> Result<Secrets, ServerError> {
        let legacy = storage.legacy_secret()?;
        let secrets = if path.exists() {
            Secrets::read(path)?
        } else {
            let nik = match &legacy {
                Some(old) => <[u8; 32]>::try_from(old.as_slice())
                    .map_err(|_| ServerError::Storage("a damaged secret in the database".into()))?,
                None => random()?,
            };
            let fresh = Secrets::from_keys(nik, random()?);
            match fresh.write_new(path) {
                Ok(()) => {
                    tracing::info!("secrets file created");
                    fresh
                }
                // Another process created it at the same moment.
                Err(_) if path.exists() => Secrets::read(path)?,
                Err(e) => return Err(e),
            }
        };
        if let Some(old) = &legacy
            && old.as_slice() != secrets.nik_key().as_slice()
        {
            return Err(bad(format!(
                "the database still holds its NIK-hash key, and the secrets file {} holds \
                 another: move the file away so the server moves the database's key into a new \
                 one, or give the file this database was started with",
                path.display()
            )));
        }
        if !storage.bind_key_check(&secrets.key_check())? {
            return Err(bad(format!(
                "the secrets file {} does not belong to this database (its NIK-hash key is \
                 another): give the file this database was started with",
                path.display()
            )));
        }
        if legacy.is_some() {
            storage.forget_legacy_secret()?;
            tracing::info!("the NIK-hash key moved from the database into the secrets file");
        }
        let mut sealed = 0usize;
        for (id, stored) in storage.webhook_secrets()? {
            if stored.len() == PLAIN_WEBHOOK_SECRET {
                storage.set_webhook_secret(&id, &secrets.seal_webhook_secret(&id, &stored)?)?;
                sealed += 1;
            }
        }
        if sealed > 0 {
            storage.release_freed()?;
            tracing::info!(sealed, "webhook secrets sealed");
        }
        Ok(secrets)
    }

    /// What the database keeps to recognise the NIK key: an HMAC under it
    /// (of no use to anyone without the key).
    pub fn key_check(&self) -> Vec<u8> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.nik_key.expose());
        hmac::sign(&key, b"sambung secrets check v1").as_ref()[..16].to_vec()
    }

    fn webhook_key(&self) -> Result<aead::LessSafeKey, ServerError> {
        let failed = || ServerError::Storage("key derivation failed".into());
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"sambung server");
        let prk = salt.extract(self.master.expose());
        let info = [b"webhook secrets v1".as_slice()];
        let okm = prk.expand(&info, Len(32)).map_err(|_| failed())?;
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        okm.fill(bytes.as_mut()).map_err(|_| failed())?;
        let unbound =
            aead::UnboundKey::new(&aead::AES_256_GCM, bytes.as_ref()).map_err(|_| failed())?;
        Ok(aead::LessSafeKey::new(unbound))
    }

    /// A webhook secret as the database keeps it: AES-256-GCM under a key
    /// derived (HKDF) from the master key, bound to the subscription's id.
    pub fn seal_webhook_secret(&self, id: &str, secret: &[u8]) -> Result<Vec<u8>, ServerError> {
        let nonce: [u8; 12] = random()?[..12]
            .try_into()
            .map_err(|_| ServerError::Storage("no randomness".into()))?;
        let mut data = secret.to_vec();
        self.webhook_key()?
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(format!("webhook {id}").as_bytes()),
                &mut data,
            )
            .map_err(|_| ServerError::Storage("sealing failed".into()))?;
        let mut out = Vec::with_capacity(1 + 12 + data.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Opens what [`Secrets::seal_webhook_secret`] made for `id`.
    pub fn open_webhook_secret(&self, id: &str, sealed: &[u8]) -> Result<Vec<u8>, ServerError> {
        let unreadable = || ServerError::Storage("a webhook secret cannot be opened".into());
        if sealed.len() < 1 + 12 + 16 || sealed[0] != SEALED_V1 {
            return Err(unreadable());
        }
        let nonce: [u8; 12] = sealed[1..13].try_into().map_err(|_| unreadable())?;
        let mut data = sealed[13..].to_vec();
        let plain = self
            .webhook_key()?
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(format!("webhook {id}").as_bytes()),
                &mut data,
            )
            .map_err(|_| unreadable())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets");
        let s = Secrets::generate().unwrap();
        s.write_new(&path).unwrap();
        let back = Secrets::read(&path).unwrap();
        assert_eq!(back.nik_key(), s.nik_key());
        assert_eq!(back.master.expose(), s.master.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Never overwritten.
        assert!(Secrets::generate().unwrap().write_new(&path).is_err());
        assert_eq!(Secrets::read(&path).unwrap().nik_key(), s.nik_key());
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets");
        for text in [
            "nik_key = \"00\"\nmaster_key = \"00\"\n",
            "nik_key\n",
            &format!("nik_key = \"{}\"\n", "ab".repeat(32)),
            &format!(
                "nik_key = \"{0}\"\nmaster_key = \"{0}\"\nother = \"{0}\"\n",
                "ab".repeat(32)
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = Secrets::read(&path).unwrap_err();
            assert!(matches!(e, ServerError::Config(_)), "{text}: {e}");
            // The error never repeats a key.
            assert!(!e.to_string().contains(&"ab".repeat(32)));
        }
        assert!(Secrets::read(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn webhook_secrets_are_sealed_and_bound_to_their_subscription() {
        let s = Secrets::generate().unwrap();
        let secret = [7u8; 32];
        let sealed = s.seal_webhook_secret("wh_1", &secret).unwrap();
        assert!(!sealed.windows(32).any(|w| w == secret));
        assert_eq!(s.open_webhook_secret("wh_1", &sealed).unwrap(), secret);
        // Another subscription's row, another master key, or a flipped
        // bit: refused.
        assert!(s.open_webhook_secret("wh_2", &sealed).is_err());
        assert!(
            Secrets::generate()
                .unwrap()
                .open_webhook_secret("wh_1", &sealed)
                .is_err()
        );
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(s.open_webhook_secret("wh_1", &flipped).is_err());
        assert!(s.open_webhook_secret("wh_1", &[1, 2, 3]).is_err());
    }
}
