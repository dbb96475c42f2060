//! Who may connect: the users file of SCRAM-SHA-256 verifiers that `serve --add-user` writes, the
//! one user the environment may name, and the SCRAM-SHA-256 exchange that checks them
//! (`scram.rs`).
//!
//! The file holds, per user, what PostgreSQL keeps in `pg_authid.rolpassword`, in its format:
//! `SCRAM-SHA-256$4096:SALT$StoredKey:ServerKey` (base64; RFC 5802). StoredKey is a hash of the
//! client's key, so a stolen file does not log anyone in; only a password guessed against it
//! would. Files written by debtlens before 0.1 held the salted password itself (pgwire's SCRAM
//! handler needed it); they are read, converted and written again in this form.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion_postgres::pgwire::api::auth::sasl::scram::{gen_salted_password, random_nonce};

use crate::error::{Error, Result};

/// The iteration count of every verifier (RFC 7677's minimum, PostgreSQL's default).
pub const ITERATIONS: usize = 4096;
const SCHEME: &str = "SCRAM-SHA-256";

/// The environment variables that name one user without a file (containers, CI).
pub const USER_ENV: &str = "DEBTLENS_SERVE_USER";
pub const PASSWORD_ENV: &str = "DEBTLENS_SERVE_PASSWORD";

/// One user's verifier: the salt and RFC 5802's StoredKey and ServerKey.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    pub(crate) salt: Vec<u8>,
    pub(crate) stored_key: Vec<u8>,
    pub(crate) server_key: Vec<u8>,
    /// Read from a file in the old form (the salted password): the file is written again.
    converted: bool,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier(..)")
    }
}

pub(crate) fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), message).as_ref().to_vec()
}

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec()
}

impl Verifier {
    /// A verifier for `password` with a fresh random salt.
    pub fn new(password: &str) -> Self {
        let salt = random_nonce().into_bytes();
        let salted = gen_salted_password(password, &salt, ITERATIONS);
        Self::from_salted(salt, &salted, false)
    }

    #[cfg(test)]
    pub(crate) fn for_test(salt: Vec<u8>, salted_password: &[u8]) -> Self {
        Self::from_salted(salt, salted_password, false)
    }

    fn from_salted(salt: Vec<u8>, salted_password: &[u8], converted: bool) -> Self {
        let stored_key = sha256(&hmac(salted_password, b"Client Key"));
        let server_key = hmac(salted_password, b"Server Key");
        Self { salt, stored_key, server_key, converted }
    }

    /// Whether `password` is the one this verifier was made from.
    pub fn accepts(&self, password: &str) -> bool {
        let salted = gen_salted_password(password, &self.salt, ITERATIONS);
        sha256(&hmac(&salted, b"Client Key")) == self.stored_key
    }

    fn encode(&self) -> String {
        format!(
            "{SCHEME}${ITERATIONS}:{}${}:{}",
            BASE64.encode(&self.salt),
            BASE64.encode(&self.stored_key),
            BASE64.encode(&self.server_key)
        )
    }

    fn decode(s: &str) -> std::result::Result<Self, String> {
        let Some(rest) = s.strip_prefix(&format!("{SCHEME}$")) else {
            return Err(format!("unknown scheme (expected {SCHEME}$...)"));
        };
        // The old form, `SCRAM-SHA-256$4096$SALT$SALTED` in hexadecimal.
        if let [iterations, salt, salted] = rest.split('$').collect::<Vec<_>>()[..]
            && !iterations.contains(':')
        {
            check_iterations(iterations)?;
            let salt = unhex(salt).ok_or("the salt is not hexadecimal")?;
            let salted = unhex(salted).ok_or("the key is not hexadecimal")?;
            if salted.len() != 32 {
                return Err("the key is not 32 bytes".into());
            }
            return Ok(Self::from_salted(salt, &salted, true));
        }
        let expected = || format!("expected {SCHEME}$ITERATIONS:SALT$STOREDKEY:SERVERKEY");
        let (head, keys) = rest.split_once('$').ok_or_else(expected)?;
        let (iterations, salt) = head.split_once(':').ok_or_else(expected)?;
        let (stored, server) = keys.split_once(':').ok_or_else(expected)?;
        check_iterations(iterations)?;
        let b64 = |what: &str, v: &str| BASE64.decode(v).map_err(|_| format!("the {what} is not base64"));
        let (salt, stored_key, server_key) = (b64("salt", salt)?, b64("StoredKey", stored)?, b64("ServerKey", server)?);
        if stored_key.len() != 32 || server_key.len() != 32 {
            return Err("a key is not 32 bytes".into());
        }
        Ok(Self { salt, stored_key, server_key, converted: false })
    }
}

fn check_iterations(iterations: &str) -> std::result::Result<(), String> {
    if iterations != ITERATIONS.to_string() {
        return Err(format!("{iterations} iterations: this debtlens writes and reads {ITERATIONS}"));
    }
    Ok(())
}

/// The users the server accepts.
#[derive(Debug, Clone, Default)]
pub struct Users {
    users: BTreeMap<String, Verifier>,
}

/// Refuses a users file that others may read or write, or that another user owns.
#[cfg(unix)]
fn check_private(file: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::metadata(file) else { return Ok(()) };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "{}: the users file may be read by others (mode {mode:o}), and what it holds logs a user in: \
             `chmod 600 {}`, then start again",
            file.display(),
            file.display()
        )));
    }
    // The process's real uid, from /proc (no libc here); where it cannot be read, the mode
    // check stands alone.
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
    });
    if let Some(uid) = uid
        && meta.uid() != uid
    {
        return Err(Error::Usage(format!(
            "{}: the users file belongs to uid {}, not to the user running the server (uid {uid})",
            file.display(),
            meta.uid()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_file: &Path) -> Result<()> {
    Ok(())
}

impl Users {
    /// Reads a users file (`name SCRAM-SHA-256$4096:SALT$STOREDKEY:SERVERKEY` per line, `#`
    /// comments). A file that does not exist holds no users.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut users = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let located = |column: usize, message: String| Error::Located {
                file: path.display().to_string(),
                line: i + 1,
                column,
                message,
            };
            let Some((name, verifier)) = line.split_once(char::is_whitespace) else {
                return Err(located(1, "expected a user name and a verifier".into()));
            };
            let verifier = Verifier::decode(verifier.trim()).map_err(|m| located(name.len() + 2, m))?;
            users.insert(name.to_string(), verifier);
        }
        Ok(Self { users })
    }

    /// The users of the file plus the one the environment names, if any. The file must be
    /// private to its owner, as PostgreSQL requires of its key: what it holds logs a user in.
    pub fn configured(file: &Path) -> Result<Self> {
        check_private(file)?;
        let mut users = Self::load(file)?;
        // A file in the old form held what logs a user in: written again without it.
        let old = users.users.values().filter(|v| v.converted).count();
        if old > 0 {
            for verifier in users.users.values_mut() {
                verifier.converted = false;
            }
            users.save(file)?;
            eprintln!(
                "debtlens: {}: {old} user{} converted to StoredKey/ServerKey (the file no longer holds what logs a user in)",
                file.display(),
                if old == 1 { "" } else { "s" }
            );
        }
        match (std::env::var(USER_ENV), std::env::var(PASSWORD_ENV)) {
            (Ok(user), Ok(password)) => {
                // The same rules as `serve --add-user`: a name without spaces or control
                // characters, a password that is not empty.
                if password.is_empty() {
                    return Err(Error::Usage(format!("{PASSWORD_ENV} is empty: a user needs a password")));
                }
                users.set(&user, Verifier::new(&password)).map_err(|e| Error::Usage(format!("{USER_ENV}: {e}")))?;
            }
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
                return Err(Error::Usage(format!("set both {USER_ENV} and {PASSWORD_ENV}, or neither")));
            }
            _ => {}
        }
        Ok(users)
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn get(&self, name: &str) -> Option<&Verifier> {
        self.users.get(name)
    }

    /// Adds or replaces a user, returning whether it replaced one.
    pub fn set(&mut self, name: &str, verifier: Verifier) -> Result<bool> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::Usage(format!("invalid user name `{name}`: no spaces or control characters")));
        }
        Ok(self.users.insert(name.to_string(), verifier).is_some())
    }

    /// Writes the file atomically, readable and writable by its owner only.
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut file = tempfile::Builder::new()
            .prefix(".users.")
            .permissions(owner_only())
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        let mut text = String::from(
            "# debtlens serve users: name SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey (as PostgreSQL)\n",
        );
        for (name, verifier) in &self.users {
            text.push_str(&format!("{name} {}\n", verifier.encode()));
        }
        let io = |e| Error::io(path, e);
        file.write_all(text.as_bytes()).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(path).map_err(|e| Error::io(path, e.error))?;
        Ok(())
    }
}

#[cfg(unix)]
fn owner_only() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o600)
}

#[cfg(not(unix))]
fn owner_only() -> std::fs::Permissions {
    std::fs::File::open(".").and_then(|f| f.metadata()).map(|m| m.permissions()).expect("current directory")
}

/// The default users file: `$XDG_CONFIG_HOME/debtlens/users`, else `~/.config/debtlens/users`.
pub fn default_users_file() -> PathBuf {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    config.join("debtlens").join("users")
}

/// The users, as the SCRAM exchange looks them up. An unknown user gets a verifier no
/// password matches, so a client cannot tell a wrong name from a wrong password.
#[derive(Debug)]
pub struct UsersSource {
    users: Users,
    decoy: Verifier,
}

impl UsersSource {
    pub fn new(users: Users) -> Self {
        Self { users, decoy: Verifier::new(&random_nonce()) }
    }

    /// The verifier of `user`, or the decoy.
    pub fn verifier(&self, user: Option<&str>) -> &Verifier {
        user.and_then(|u| self.users.get(u)).unwrap_or(&self.decoy)
    }
}

#[cfg(test)]
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_accepts_its_password_only_and_survives_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf/users");
        let mut users = Users::default();
        users.set("ana", Verifier::new("s3cret pass")).unwrap();
        users.set("bo", Verifier::new("other")).unwrap();
        users.save(&path).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"), "the password must not be stored: {text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let loaded = Users::load(&path).unwrap();
        assert_eq!(loaded.len(), 2);
        assert!(loaded.get("ana").unwrap().accepts("s3cret pass"));
        assert!(!loaded.get("ana").unwrap().accepts("s3cret pas"));
        assert!(loaded.get("bo").unwrap().accepts("other"));
    }

    #[test]
    fn two_users_with_one_password_get_different_salts() {
        assert_ne!(Verifier::new("same"), Verifier::new("same"));
    }

    /// The file holds PostgreSQL's StoredKey and ServerKey, not the salted password that logs
    /// in; a file of the old form is converted, and its users keep their passwords.
    #[test]
    fn the_file_holds_no_key_that_logs_in_and_old_files_are_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let mut users = Users::default();
        users.set("ana", Verifier::new("pw")).unwrap();
        users.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text.lines().nth(1).unwrap();
        assert!(line.starts_with("ana SCRAM-SHA-256$4096:") && line.matches(':').count() == 2, "{line}");
        let verifier = Users::load(&path).unwrap().get("ana").unwrap().clone();
        let salted = gen_salted_password("pw", &verifier.salt, ITERATIONS);
        assert!(!text.contains(&BASE64.encode(&salted)) && !text.contains(&hex(&salted)));

        // The old form: name SCRAM-SHA-256$4096$SALT$SALTED (hex).
        let salt = b"0123456789abcdef".to_vec();
        let old =
            format!("bo SCRAM-SHA-256$4096${}${}\n", hex(&salt), hex(&gen_salted_password("old", &salt, ITERATIONS)));
        std::fs::write(&path, &old).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let users = Users::configured(&path).unwrap();
        assert!(users.get("bo").unwrap().accepts("old"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("bo SCRAM-SHA-256$4096:") && !text.contains(&old[3..]), "{text}");
        assert!(Users::load(&path).unwrap().get("bo").unwrap().accepts("old"));
    }

    #[test]
    fn a_broken_users_file_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "# users\nana SCRAM-SHA-256$4096$zz$00\n").unwrap();
        let err = Users::load(&path).unwrap_err().to_string();
        assert!(err.ends_with(":2:5: the salt is not hexadecimal"), "{err}");
        std::fs::write(&path, "ana\n").unwrap();
        assert!(Users::load(&path).unwrap_err().to_string().contains(":1:1: expected a user name"));
        assert!(Users::load(&dir.path().join("none")).unwrap().is_empty());
    }

    #[test]
    fn user_names_with_spaces_are_refused() {
        assert!(Users::default().set("a b", Verifier::new("x")).is_err());
        assert!(Users::default().set("", Verifier::new("x")).is_err());
    }
}
