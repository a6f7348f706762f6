//! The secrets a session's workspace server demands, which only Weft's proxy holds: derived
//! from one key file (`<data_dir>/keys/sessions.key`, created 0600 on first start) and the
//! session's id, so none is stored in the database.
//!
//! Jupyter gets a token (`JUPYTER_TOKEN`), sent by the proxy as `Authorization: token ...`.
//! code-server gets `HASHED_PASSWORD`, an argon2 hash; it accepts a `code-server-session`
//! cookie equal to that hash, which the proxy sends. Whoever reaches a container without
//! Weft (another container, a user on the host) gets Jupyter's 403 or code-server's login
//! page. Several Weft hosts sharing one database must share the key file.

use anyhow::Context as _;
use argon2::password_hash::{PasswordHasher as _, SaltString};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

const KEY_BYTES: usize = 32;

/// The sessions key, cheap to clone.
#[derive(Clone)]
pub(crate) struct SessionKeys(Arc<[u8; KEY_BYTES]>);

impl SessionKeys {
    /// Reads the key at `path`, or creates it (readable by Weft's user only) when missing.
    pub(crate) fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text)
                .with_context(|| format!("the sessions key file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(text.trim()).context("is not hexadecimal")?;
        let key: [u8; KEY_BYTES] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("must hold {KEY_BYTES} bytes in hexadecimal"))?;
        Ok(Self(Arc::new(key)))
    }

    fn create(path: &Path) -> anyhow::Result<Self> {
        let mut key = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(format!("{}\n", hex::encode(key)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tracing::info!(path = %path.display(), "created the sessions key");
                Ok(Self(Arc::new(key)))
            }
            // Another Weft process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(path),
            Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }

    fn derive(&self, purpose: &str, session_id: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0[..]).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(session_id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The token session `session_id`'s Jupyter server demands.
    pub(crate) fn jupyter_token(&self, session_id: &str) -> String {
        hex::encode(self.derive("jupyter-token", session_id))
    }

    /// The argon2 hash (PHC string) code-server of session `session_id` is given as
    /// `HASHED_PASSWORD`, and the value of the cookie it accepts.
    ///
    /// The hashed password is 256 random bits nobody ever types, and code-server compares the
    /// cookie to the hash as a string, so the hash's cost buys nothing: cheap parameters keep
    /// it quick to derive.
    pub(crate) fn code_server_hash(&self, session_id: &str) -> String {
        let password = hex::encode(self.derive("code-server-password", session_id));
        let salt = self.derive("code-server-salt", session_id);
        let salt = SaltString::encode_b64(&salt[..16]).expect("16 bytes make a salt");
        let params = argon2::Params::new(1024, 2, 1, None).expect("valid argon2 parameters");
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 hashes a 64-byte password")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_created_private_and_read_back_with_the_same_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/sessions.key");
        let first = SessionKeys::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = SessionKeys::load_or_create(&path).unwrap();
        assert_eq!(first.jupyter_token("s1"), again.jupyter_token("s1"));
        assert_eq!(first.code_server_hash("s1"), again.code_server_hash("s1"));
        assert_ne!(first.jupyter_token("s1"), first.jupyter_token("s2"));
        assert_eq!(first.jupyter_token("s1").len(), 64);
        let hash = first.code_server_hash("s1");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=2,p=1$"), "{hash}");
        assert_ne!(hash, first.code_server_hash("s2"));

        let other = tempfile::tempdir().unwrap();
        let elsewhere = SessionKeys::load_or_create(&other.path().join("k")).unwrap();
        assert_ne!(first.jupyter_token("s1"), elsewhere.jupyter_token("s1"));
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.key");
        std::fs::write(&path, "not hex").unwrap();
        let err = SessionKeys::load_or_create(&path).err().unwrap();
        assert!(format!("{err:#}").contains("hexadecimal"), "{err:#}");
        std::fs::write(&path, "abcd").unwrap();
        assert!(SessionKeys::load_or_create(&path).is_err());
    }
}
