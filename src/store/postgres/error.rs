//! Database errors: which are worth running the transaction again (two
//! nodes raced for the same rows), and how the rest read as store errors.

use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// What an operation's step can fail with: a refusal the rules made, or
/// the database's error (kept whole, to tell a lost race from a failure).
#[derive(Debug)]
pub enum Failure {
    Refused(StoreError),
    Database(tokio_postgres::Error),
}

pub type Step<T> = Result<T, Failure>;

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Refused(error)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        Failure::Database(error)
    }
}

impl Failure {
    /// A serialization failure, a deadlock, or a unique key another
    /// transaction took first: running the whole operation again decides
    /// it against what that transaction wrote.
    pub fn is_race(&self) -> bool {
        let Failure::Database(error) = self else {
            return false;
        };
        matches!(
            error.code(),
            Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::UNIQUE_VIOLATION
        )
    }

    /// The connection was found closed (the database restarted, or cut
    /// it) before the transaction's commit was sent: nothing was written,
    /// and a fresh connection may run it.
    pub fn is_closed_connection(&self) -> bool {
        matches!(self, Failure::Database(error) if error.is_closed())
    }

    pub fn into_store_error(self) -> StoreError {
        match self {
            Failure::Refused(error) => error,
            Failure::Database(error) => database_error(&error),
        }
    }
}

/// A database error as the store reports it: unavailable (try again),
/// or corrupt when a stored value cannot be read.
pub fn database_error(error: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        return StoreError::Unavailable(format!("postgresql: {} ({})", db.message(), db.code().code()));
    }
    let text = error.to_string();
    if text.contains("error deserializing") {
        return StoreError::Corrupt(text);
    }
    StoreError::Unavailable(format!("postgresql: {text}"))
}
