//! Which task types this deployment knows. A submit of any other type is
//! refused, naming the known ones: a typo like `report_generaton` must not
//! park a task forever waiting for a handler that will never come.
//!
//! A type is known for one of four reasons, kept apart because they last
//! differently: the design note names it, a handler of this server serves
//! it, the configuration lists it (`known_task_types`) — those hold for the
//! server's life — or a worker declared it. Declarations are stored, shared
//! by every node and kept across restarts, but not for ever: one no worker
//! renewed for `forget_task_types_after` is forgotten, and an admin may
//! remove one (`engine::task_types`).

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::RwLock;

/// The task types of the design note, known from the start: the
/// application's workers serve the first two, taskd the other three.
pub const SEED_TASK_TYPES: &[&str] = &[
    "document_processing",
    "vector_store_update",
    "report_generation",
    "data_export",
    "system_maintenance",
];

/// Most known types an error message lists before it says how many more.
const LISTED: usize = 20;

/// Why a type is known for the server's whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FixedBy {
    /// The design note names it.
    DesignNote,
    /// `engine.known_task_types` lists it.
    Configuration,
    /// A handler of this server serves it (built-in or embedded).
    Handler,
}

impl FixedBy {
    /// Why the type cannot be forgotten, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            FixedBy::DesignNote => "the design note names it",
            FixedBy::Configuration => "engine.known_task_types lists it",
            FixedBy::Handler => "taskd serves it with a handler of its own",
        }
    }
}

#[derive(Default)]
pub struct TaskTypeCatalog {
    /// Known for the server's life, with the strongest reason (a handler
    /// outranks the configuration, which outranks the design note).
    fixed: RwLock<BTreeMap<String, FixedBy>>,
    /// Declared by workers, as the store last said.
    declared: RwLock<BTreeSet<String>>,
    /// The params a type's handler takes, for handlers that said.
    params: RwLock<BTreeMap<String, &'static [&'static str]>>,
}

impl TaskTypeCatalog {
    pub fn fix(&self, task_types: impl IntoIterator<Item = String>, by: FixedBy) {
        let mut fixed = self.fixed.write();
        for task_type in task_types {
            let reason = fixed.entry(task_type).or_insert(by);
            *reason = (*reason).max(by);
        }
    }

    /// Tasks of `task_type` may carry only `params` from now on.
    pub fn limit_params(&self, task_type: String, params: &'static [&'static str]) {
        self.params.write().insert(task_type, params);
    }

    /// The first of `names` that `task_type` does not take, with the ones
    /// it does; `None` when all are taken or the type takes anything.
    pub fn unknown_param<'a>(
        &self,
        task_type: &str,
        mut names: impl Iterator<Item = &'a String>,
    ) -> Option<(&'a String, &'static [&'static str])> {
        let accepted = *self.params.read().get(task_type)?;
        names
            .find(|name| !accepted.contains(&name.as_str()))
            .map(|name| (name, accepted))
    }

    /// Why `task_type` is known for good, if it is.
    pub fn fixed_by(&self, task_type: &str) -> Option<FixedBy> {
        self.fixed.read().get(task_type).copied()
    }

    pub fn add_declared(&self, task_types: impl IntoIterator<Item = String>) {
        self.declared.write().extend(task_types);
    }

    /// The declared types are now `task_types` (as the store says): what
    /// another node declared is learnt, what was forgotten is dropped.
    pub fn replace_declared(&self, task_types: impl IntoIterator<Item = String>) {
        *self.declared.write() = task_types.into_iter().collect();
    }

    pub fn forget_declared(&self, task_types: &[String]) {
        let mut declared = self.declared.write();
        for task_type in task_types {
            declared.remove(task_type);
        }
    }

    pub fn knows(&self, task_type: &str) -> bool {
        self.fixed.read().contains_key(task_type) || self.declared.read().contains(task_type)
    }

    /// Every known type, sorted.
    pub fn all(&self) -> Vec<String> {
        let mut all: BTreeSet<String> = self.fixed.read().keys().cloned().collect();
        all.extend(self.declared.read().iter().cloned());
        all.into_iter().collect()
    }

    /// Why `task_type` is refused: the closest known type if one is a
    /// likely typo, and the known types.
    pub fn refusal(&self, task_type: &str) -> String {
        let known = self.all();
        let closest = known
            .iter()
            .map(|candidate| (edit_distance(task_type, candidate), candidate))
            .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 6))
            .min();
        let mut message = format!("unknown task type {task_type:?}");
        if let Some((_, candidate)) = closest {
            message.push_str(&format!(" (did you mean {candidate:?}?)"));
        }
        let listed: Vec<&str> = known.iter().take(LISTED).map(String::as_str).collect();
        message.push_str(&format!("; known types: {}", listed.join(", ")));
        if known.len() > LISTED {
            message.push_str(&format!(" and {} more", known.len() - LISTED));
        }
        message.push_str(
            ". A worker declares the types it serves when it connects; \
             the configuration's known_task_types adds others",
        );
        message
    }
}

/// Levenshtein distance over bytes (task types are ASCII).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, left) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, right) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(left != right);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> TaskTypeCatalog {
        let catalog = TaskTypeCatalog::default();
        catalog.fix(SEED_TASK_TYPES.iter().map(|name| name.to_string()), FixedBy::DesignNote);
        catalog
    }

    #[test]
    fn a_typo_is_refused_with_the_type_it_probably_meant() {
        let message = seeded().refusal("report_generaton");
        assert!(
            message.starts_with("unknown task type \"report_generaton\""),
            "{message}"
        );
        assert!(message.contains("did you mean \"report_generation\"?"), "{message}");
        assert!(
            message.contains("known types: data_export, document_processing"),
            "{message}"
        );
    }

    #[test]
    fn a_type_unlike_any_known_one_suggests_nothing() {
        let message = seeded().refusal("thumbnails");
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn a_long_list_of_known_types_is_cut_short() {
        let catalog = TaskTypeCatalog::default();
        catalog.add_declared((0..30).map(|index| format!("type.{index:02}")));
        let message = catalog.refusal("other");
        assert!(message.contains("type.19 and 10 more"), "{message}");
        assert!(!message.contains("type.20"), "{message}");
    }

    #[test]
    fn declared_types_come_and_go_while_fixed_ones_stay_with_their_strongest_reason() {
        let catalog = seeded();
        catalog.fix(["data_export".to_string()], FixedBy::Handler);
        catalog.fix(["data_export".to_string()], FixedBy::Configuration);
        assert_eq!(catalog.fixed_by("data_export"), Some(FixedBy::Handler));
        catalog.add_declared(["thumbnails".to_string()]);
        assert!(catalog.knows("thumbnails") && catalog.fixed_by("thumbnails").is_none());
        catalog.replace_declared(["embeddings".to_string()]);
        assert!(!catalog.knows("thumbnails"));
        catalog.forget_declared(&["embeddings".to_string()]);
        assert!(!catalog.knows("embeddings"));
        assert!(catalog.knows("document_processing"));
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
