//! The `WHERE` clause of a task list, written once for every backend. A
//! backend says how its SQL binds a value, matches a list, reads a label
//! and searches text ([`FilterDialect`]); which conditions a filter makes
//! is decided here.

use crate::model::{TaskId, TaskStatus};
use crate::store::ListQuery;

/// One value to bind.
pub enum FilterValue {
    Int(i64),
    Id(TaskId),
}

/// The values a column may take (never empty).
pub enum FilterList {
    Ints(Vec<i64>),
    Texts(Vec<String>),
}

/// How a backend's SQL writes each kind of condition; each call binds its
/// values and answers the SQL that uses them.
pub trait FilterDialect {
    fn bind(&mut self, value: FilterValue) -> String;
    /// `column` is one of `values`.
    fn any_of(&mut self, column: &str, values: FilterList) -> String;
    /// The task carries label `key` with `value`.
    fn label_is(&mut self, key: &str, value: &str) -> String;
    /// `column` contains `part`, ignoring ASCII case (no wildcards).
    fn contains(&mut self, column: &str, part: &str) -> String;
}

/// `WHERE ...` for `query` (empty when it matches everything), its values
/// bound through `dialect`.
pub fn where_clause(query: &ListQuery, dialect: &mut impl FilterDialect) -> String {
    let filter = &query.filter;
    let mut conditions: Vec<String> = Vec::new();
    if !filter.statuses.is_empty() {
        let codes = filter.statuses.iter().map(|status| status.code()).collect();
        conditions.push(dialect.any_of("status", FilterList::Ints(codes)));
        if !filter.statuses.contains(&TaskStatus::Completed) {
            // Lets the planner use the index of statuses other than COMPLETED.
            conditions.push(format!("status != {}", TaskStatus::Completed.code()));
        }
    }
    if !filter.task_types.is_empty() {
        conditions.push(dialect.any_of("task_type", FilterList::Texts(filter.task_types.clone())));
    }
    if !filter.priorities.is_empty() {
        let codes = filter.priorities.iter().map(|priority| priority.code()).collect();
        conditions.push(dialect.any_of("priority", FilterList::Ints(codes)));
    }
    for (key, value) in &filter.labels {
        conditions.push(dialect.label_is(key, value));
    }
    let mut compare = |column: &str, operator: &str, value: FilterValue| {
        let mark = dialect.bind(value);
        format!("{column} {operator} {mark}")
    };
    if let Some(after) = filter.created_after {
        conditions.push(compare("created_at", ">=", FilterValue::Int(after.as_micros())));
    }
    if let Some(before) = filter.created_before {
        conditions.push(compare("created_at", "<", FilterValue::Int(before.as_micros())));
    }
    if let Some(before) = filter.finished_before {
        conditions.push(compare("completed_at", "<", FilterValue::Int(before.as_micros())));
    }
    if let Some(upstream) = filter.depends_on {
        let mark = dialect.bind(FilterValue::Id(upstream));
        conditions.push(format!(
            "id IN (SELECT task_id FROM task_dependencies WHERE depends_on = {mark})"
        ));
    }
    if let Some(before_id) = query.before_id {
        let mark = dialect.bind(FilterValue::Id(before_id));
        conditions.push(format!("id < {mark}"));
    }
    if let Some(part) = &filter.name_contains {
        conditions.push(dialect.contains("name", part));
    }
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}
