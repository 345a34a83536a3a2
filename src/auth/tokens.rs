//! The token table: parsed from lines, matched in constant time.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Principal, Scope};

/// Shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A token table that cannot be used; names the source and line.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read auth.tokens_file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{source_name} line {line}: {message}")]
    Line {
        source_name: String,
        line: usize,
        message: String,
    },
}

struct Entry {
    /// The token is kept only as its SHA-256: equal-length digests compare
    /// in constant time whatever the presented token's length, and a dump
    /// of the process holds no usable token.
    digest: [u8; 32],
    principal: Arc<Principal>,
}

/// Every configured token. Its `Debug` shows names and scopes, never
/// tokens.
#[derive(Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_list()
            .entries(self.entries.iter().map(|entry| &entry.principal.name))
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Reads lines `<name> <scope>[,<scope>...] <token>`; blank lines and
    /// lines starting with `#` are skipped. `source_name` names the origin
    /// in errors (a file path or an environment variable).
    pub fn parse(text: &str, source_name: &str) -> Result<Tokens, AuthError> {
        let mut tokens = Tokens::default();
        tokens.add_lines(text, source_name)?;
        Ok(tokens)
    }

    /// Reads the tokens file (if any) and `TASKD_AUTH_TOKENS` (if set).
    pub fn load(file: &Path, env_value: Option<&str>) -> Result<Tokens, AuthError> {
        let mut tokens = Tokens::default();
        if !file.as_os_str().is_empty() {
            let text = std::fs::read_to_string(file).map_err(|source| AuthError::Read {
                path: file.display().to_string(),
                source,
            })?;
            tokens.add_lines(&text, &file.display().to_string())?;
        }
        if let Some(value) = env_value {
            tokens.add_lines(&value.replace(';', "\n"), "TASKD_AUTH_TOKENS")?;
        }
        Ok(tokens)
    }

    fn add_lines(&mut self, text: &str, source_name: &str) -> Result<(), AuthError> {
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: String| AuthError::Line {
                source_name: source_name.to_string(),
                line: index + 1,
                message,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, scopes, token] = fields.as_slice() else {
                return Err(error(format!(
                    "expected `<name> <scope>[,<scope>...] <token>`, found {} fields",
                    fields.len()
                )));
            };
            let scopes = scopes
                .split(',')
                .map(|scope| {
                    Scope::parse(scope).ok_or_else(|| {
                        error(format!(
                            "unknown scope {scope:?} of token {name:?}; scopes are read, submit, cancel, worker, admin"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(error(format!(
                    "the token of {name:?} is shorter than {MIN_TOKEN_CHARS} characters (`taskd token` makes one)"
                )));
            }
            let digest = digest(token);
            if self.entries.iter().any(|entry| entry.digest == digest) {
                return Err(error(format!("the token of {name:?} is also another entry's token")));
            }
            self.entries.push(Entry {
                digest,
                principal: Arc::new(Principal::new(*name, scopes)),
            });
        }
        Ok(())
    }

    /// The holder of `presented`, if it is a configured token. Every entry
    /// is compared, in constant time, so the answer's timing says nothing
    /// about how close a guess was or which entry matched.
    pub fn authenticate(&self, presented: &str) -> Option<Arc<Principal>> {
        let presented = digest(presented);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(entry.principal.clone());
            }
        }
        found
    }
}

/// A new random token: 32 bytes from the OS's generator, base64url.
pub fn generate() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "
        # name   scopes          token
        ci       submit,read     ci-token-0123456789abcdef
        ops      admin           ops-token-0123456789abcdef
    ";

    #[test]
    fn a_configured_token_authenticates_as_its_holder_with_its_scopes() {
        let tokens = Tokens::parse(TABLE, "test").expect("parse");
        let ci = tokens.authenticate("ci-token-0123456789abcdef").expect("ci");
        assert_eq!(ci.name, "ci");
        assert!(ci.allows(Scope::Submit) && ci.allows(Scope::Read));
        assert!(!ci.allows(Scope::Cancel) && !ci.allows(Scope::Worker));
        let ops = tokens.authenticate("ops-token-0123456789abcdef").expect("ops");
        assert!(Scope::ALL.into_iter().all(|scope| ops.allows(scope)));
    }

    #[test]
    fn unknown_and_near_miss_tokens_authenticate_as_no_one() {
        let tokens = Tokens::parse(TABLE, "test").expect("parse");
        assert!(tokens.authenticate("").is_none());
        assert!(tokens.authenticate("ci-token-0123456789abcdeF").is_none());
        assert!(tokens.authenticate("ci-token-0123456789abcdef ").is_none());
    }

    #[test]
    fn bad_lines_are_refused_naming_the_source_and_line() {
        let error = Tokens::parse("ci read\n", "tokens.txt").expect_err("error").to_string();
        assert!(error.starts_with("tokens.txt line 1:"), "{error}");
        let error = Tokens::parse("\nci reed 0123456789abcdef0\n", "tokens.txt")
            .expect_err("error")
            .to_string();
        assert!(error.contains("line 2") && error.contains("\"reed\""), "{error}");
        let error = Tokens::parse("ci read short\n", "f").expect_err("error").to_string();
        assert!(error.contains("shorter than 16"), "{error}");
        let duplicate = "a read 0123456789abcdef0\nb admin 0123456789abcdef0\n";
        assert!(Tokens::parse(duplicate, "f").is_err());
    }

    #[test]
    fn debug_output_never_shows_a_token() {
        let tokens = Tokens::parse(TABLE, "test").expect("parse");
        let shown = format!("{tokens:?}");
        assert!(shown.contains("ci") && !shown.contains("0123456789"), "{shown}");
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let (first, second) = (generate(), generate());
        assert!(first.len() >= 43 && first != second);
        assert!(Tokens::parse(&format!("x read {first}"), "t").is_ok());
    }
}
