//! Who may connect: the users file of SCRAM-SHA-256 verifiers that `serve --add-user` writes, the
//! one user the environment may name, and the `AuthSource` pgwire's SCRAM handler asks.
//!
//! The file holds, per user, a random salt and the salted password (PBKDF2-HMAC-SHA-256, 4096
//! iterations, RFC 5802's `SaltedPassword`), never the password. pgwire 0.41's SCRAM server
//! needs the salted password itself rather than PostgreSQL's StoredKey/ServerKey pair, so the
//! file is written readable by its owner only.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use datafusion_postgres::pgwire::api::auth::sasl::scram::{gen_salted_password, random_nonce};
use datafusion_postgres::pgwire::api::auth::{AuthSource, LoginInfo, Password};
use datafusion_postgres::pgwire::error::PgWireResult;

use crate::error::{Error, Result};

/// The iteration count of every verifier (RFC 7677's minimum, PostgreSQL's default).
pub const ITERATIONS: usize = 4096;
const SCHEME: &str = "SCRAM-SHA-256";

/// The environment variables that name one user without a file (containers, CI).
pub const USER_ENV: &str = "DEBTLENS_SERVE_USER";
pub const PASSWORD_ENV: &str = "DEBTLENS_SERVE_PASSWORD";

/// One user's verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    salt: Vec<u8>,
    salted_password: Vec<u8>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier(..)")
    }
}

impl Verifier {
    /// A verifier for `password` with a fresh random salt.
    pub fn new(password: &str) -> Self {
        let salt = random_nonce().into_bytes();
        let salted_password = gen_salted_password(password, &salt, ITERATIONS);
        Self { salt, salted_password }
    }

    /// Whether `password` is the one this verifier was made from.
    pub fn accepts(&self, password: &str) -> bool {
        gen_salted_password(password, &self.salt, ITERATIONS) == self.salted_password
    }

    fn encode(&self) -> String {
        format!("{SCHEME}${ITERATIONS}${}${}", hex(&self.salt), hex(&self.salted_password))
    }

    fn decode(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split('$').collect();
        let [scheme, iterations, salt, salted] = parts[..] else {
            return Err(format!("expected {SCHEME}$ITERATIONS$SALT$KEY"));
        };
        if scheme != SCHEME {
            return Err(format!("unknown scheme `{scheme}` (expected {SCHEME})"));
        }
        if iterations != ITERATIONS.to_string() {
            return Err(format!("{iterations} iterations: this debtlens writes and reads {ITERATIONS}"));
        }
        let salt = unhex(salt).ok_or("the salt is not hexadecimal")?;
        let salted_password = unhex(salted).ok_or("the key is not hexadecimal")?;
        if salted_password.len() != 32 {
            return Err("the key is not 32 bytes".into());
        }
        Ok(Self { salt, salted_password })
    }
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
    /// Reads a users file (`name SCRAM-SHA-256$4096$salt$key` per line, `#` comments). A file that
    /// does not exist holds no users.
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
        let mut text = String::from("# debtlens serve users: name SCRAM-SHA-256$iterations$salt$salted-password\n");
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

/// What pgwire's SCRAM handler asks for a user's verifier. An unknown user gets a verifier no
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
}

// Written out rather than with `#[async_trait]`: the trait elides `LoginInfo`'s lifetime, which
// an `async fn` in an edition-2024 impl cannot.
impl AuthSource for UsersSource {
    fn get_password<'life0, 'life1, 'async_trait>(
        &'life0 self,
        login: &'life1 LoginInfo,
    ) -> Pin<Box<dyn Future<Output = PgWireResult<Password>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
    {
        let verifier = login.user().and_then(|u| self.users.get(u)).unwrap_or(&self.decoy);
        let password = Password::new(Some(verifier.salt.clone()), verifier.salted_password.clone());
        Box::pin(std::future::ready(Ok(password)))
    }
}

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
