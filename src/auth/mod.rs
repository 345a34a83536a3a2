//! Who may do what: bearer tokens, each with a name and scopes. Free of
//! transport types; `api::access` applies it to every request.

mod tokens;

pub use tokens::generate as generate_token;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use tokens::{AuthError, Tokens};

/// Authentication settings. With no tokens configured (the default) every
/// request is allowed, as suits a server on 127.0.0.1.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// File of tokens, one per line: `<name> <scope>[,<scope>...] <token>`.
    /// Tokens may also come from TASKD_AUTH_TOKENS (same lines, `;` or
    /// newline between them). Reloaded on SIGHUP.
    pub tokens_file: PathBuf,
    /// Health endpoints (/healthz, /readyz, grpc.health.v1) answer without a
    /// token.
    pub open_health: bool,
    /// /metrics answers without a token.
    pub open_metrics: bool,
    /// Token lines given other than by file (TASKD_AUTH_TOKENS): never
    /// written out or shown.
    #[serde(skip)]
    pub tokens_text: Option<Secret>,
}

/// Text that must not appear in logs or settings listings.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("<secret>")
    }
}

impl AuthConfig {
    /// Reads the configured tokens (file, then TASKD_AUTH_TOKENS text).
    pub fn load_tokens(&self) -> Result<Tokens, AuthError> {
        Tokens::load(
            &self.tokens_file,
            self.tokens_text.as_ref().map(|secret| secret.0.as_str()),
        )
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            tokens_file: PathBuf::new(),
            open_health: true,
            open_metrics: false,
            tokens_text: None,
        }
    }
}

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read tasks, stats, workers, alerts; watch.
    Read,
    /// Submit tasks (not system_maintenance).
    Submit,
    /// Cancel tasks.
    Cancel,
    /// Serve tasks as a worker.
    Worker,
    /// Everything, including system_maintenance tasks.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [Scope::Read, Scope::Submit, Scope::Cancel, Scope::Worker, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Submit => "submit",
            Scope::Cancel => "cancel",
            Scope::Worker => "worker",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.name() == text)
    }
}

/// The holder of a token that was presented and matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    scopes: Vec<Scope>,
}

impl Principal {
    pub fn new(name: impl Into<String>, mut scopes: Vec<Scope>) -> Self {
        scopes.sort();
        scopes.dedup();
        Principal {
            name: name.into(),
            scopes,
        }
    }

    /// Admin holds every scope.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    pub fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.scopes.iter().copied()
    }
}

/// Task types only an admin may submit: they act on the whole server
/// (system_maintenance purges finished tasks).
pub const ADMIN_TASK_TYPES: &[&str] = &["system_maintenance"];
