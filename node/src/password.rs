//! The web UI password file: `web-password` in the data directory holds the argon2id
//! hash (PHC string) of the owner's password, mode 0600. `p2pd passwd` writes it; the
//! daemon's web login reads it. Its format and rules live here, below both.
//!
//! Hashing and verifying take tens of milliseconds of CPU and memory on purpose: call
//! them from a blocking thread, never on an async task.

use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// File in the data directory holding the argon2 hash of the owner's password.
pub const PASSWORD_FILE: &str = "web-password";
/// Shortest password accepted, in characters.
pub const MIN_LEN: usize = 8;
/// Longest password accepted, in bytes (argon2 hashes any length, but a bound keeps
/// requests small).
pub const MAX_LEN: usize = 1024;

/// Why a password could not be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`MIN_LEN`] characters.
    #[error("the password must have at least {MIN_LEN} characters")]
    TooShort,
    /// More than [`MAX_LEN`] bytes.
    #[error("the password must have at most {MAX_LEN} bytes")]
    TooLong,
    /// argon2 failed.
    #[error("hashing the password: {0}")]
    Hash(String),
    /// The file could not be written.
    #[error("writing the password file: {0}")]
    Write(#[from] std::io::Error),
}

impl PasswordError {
    /// Whether the caller's password was at fault (rather than the machine).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, PasswordError::TooShort | PasswordError::TooLong)
    }
}

/// Checks a new password's length.
pub fn check_new(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// The argon2id hash of a password, as a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches a stored PHC hash (false for a malformed hash).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc.trim()) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks and hashes `password` and stores it in the data directory (mode 0600, via a
/// temporary file and a rename, so a crash leaves the old password or the new one).
pub fn store(data_dir: &Path, password: &str) -> Result<(), PasswordError> {
    check_new(password)?;
    let hash = hash(password)?;
    chunk_store::fsutil::write_private(
        &data_dir.join(PASSWORD_FILE),
        format!("{hash}\n").as_bytes(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let hash = hash("correct horse").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify("correct horse", &hash));
        assert!(!verify("correct horsf", &hash));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn lengths_are_checked_before_hashing() {
        assert!(matches!(check_new("short"), Err(PasswordError::TooShort)));
        assert!(matches!(
            check_new(&"x".repeat(MAX_LEN + 1)),
            Err(PasswordError::TooLong)
        ));
        assert!(check_new("long enough").is_ok());
    }
}
