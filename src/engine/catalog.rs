//! Which task types this deployment knows. A submit of any other type is
//! refused, naming the known ones: a typo like `report_generaton` must not
//! park a task forever waiting for a handler that will never come.
//!
//! A type is known when the design note names it, a built-in or embedded
//! handler serves it, the configuration lists it (`known_task_types`), or a
//! worker has ever declared it. Declarations are stored, so they outlive
//! the worker's connection and the server's restarts.

use std::collections::BTreeSet;

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

#[derive(Default)]
pub struct TaskTypeCatalog {
    known: RwLock<BTreeSet<String>>,
}

impl TaskTypeCatalog {
    pub fn new(task_types: impl IntoIterator<Item = String>) -> Self {
        let catalog = TaskTypeCatalog::default();
        catalog.add(task_types);
        catalog
    }

    pub fn add(&self, task_types: impl IntoIterator<Item = String>) {
        self.known.write().extend(task_types);
    }

    pub fn knows(&self, task_type: &str) -> bool {
        self.known.read().contains(task_type)
    }

    /// Of `task_types`, those not known yet.
    pub fn unknown_of<'a>(&self, task_types: &'a [String]) -> Vec<&'a String> {
        let known = self.known.read();
        task_types
            .iter()
            .filter(|task_type| !known.contains(*task_type))
            .collect()
    }

    pub fn all(&self) -> Vec<String> {
        self.known.read().iter().cloned().collect()
    }

    /// Why `task_type` is refused: the closest known type if one is a
    /// likely typo, and the known types.
    pub fn refusal(&self, task_type: &str) -> String {
        let known = self.known.read();
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
        TaskTypeCatalog::new(SEED_TASK_TYPES.iter().map(|name| name.to_string()))
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
        let catalog = TaskTypeCatalog::new((0..30).map(|index| format!("type.{index:02}")));
        let message = catalog.refusal("other");
        assert!(message.contains("type.19 and 10 more"), "{message}");
        assert!(!message.contains("type.20"), "{message}");
    }

    #[test]
    fn declared_types_become_known() {
        let catalog = seeded();
        let declared = vec!["thumbnails".to_string(), "data_export".to_string()];
        assert_eq!(catalog.unknown_of(&declared), vec![&declared[0]]);
        catalog.add(declared.clone());
        assert!(catalog.knows("thumbnails"));
        assert!(catalog.unknown_of(&declared).is_empty());
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
