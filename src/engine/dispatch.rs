//! Who may claim what, right now, on this node. Every executor (the
//! in-process one and each connected worker) plans its claims here before
//! it asks the store, so that together they stay within the concurrency
//! limits in force (global, adaptive, per type) and do not all rush at the
//! same ready task: work that one executor is claiming is not offered to
//! another, and an executor with nothing to take asks the store nothing.
//!
//! The counts follow the store's committed transitions (ready tasks per
//! type) and the executors' own reports (attempts started and ended).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::engine::limits::ConcurrencyLimits;
use crate::model::TaskStatus;
use crate::store::{StatusCount, Transition};

#[derive(Default)]
struct TypeState {
    /// PENDING tasks of the type, as of the last commit.
    ready: u64,
    /// Of those, how many claims under way may take.
    claiming: u64,
    /// Attempts of the type running here, plus room reserved for claims
    /// under way.
    occupied: usize,
}

#[derive(Default)]
struct State {
    /// Attempts running on this node.
    running: usize,
    /// Room reserved for claims under way.
    reserved: usize,
    /// Whether a plan found ready work that claims under way had taken: if
    /// one of them takes less than it planned, the refused should look
    /// again.
    refused_for_claims: bool,
    types: HashMap<String, TypeState>,
}

impl State {
    /// Reserves room for a claim of up to `planned` tasks per type, at most
    /// `most` in all.
    fn reserve(&mut self, planned: Vec<(String, usize)>, most: usize) -> ClaimPlan {
        let total = most.min(planned.iter().map(|(_, most)| most).sum());
        for (task_type, most) in &planned {
            let of = self.of(task_type);
            of.claiming += *most as u64;
            of.occupied += most;
        }
        self.reserved += total;
        ClaimPlan {
            task_types: planned,
            limit: total,
        }
    }

    fn of(&mut self, task_type: &str) -> &mut TypeState {
        if !self.types.contains_key(task_type) {
            self.types.insert(task_type.to_string(), TypeState::default());
        }
        self.types.get_mut(task_type).expect("inserted above")
    }
}

/// A claim an executor may make: at most `limit` tasks, at most the given
/// number of each type. Hand it back with [`Dispatch::settle`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a plan reserves room until it is settled"]
pub struct ClaimPlan {
    pub task_types: Vec<(String, usize)>,
    pub limit: usize,
}

#[derive(Default)]
pub struct Dispatch {
    state: Mutex<State>,
}

impl Dispatch {
    /// Starts from the store's counts.
    pub fn new(counts: &[StatusCount]) -> Self {
        let dispatch = Dispatch::default();
        {
            let mut state = dispatch.state.lock();
            for count in counts {
                if count.status == TaskStatus::Pending {
                    state.of(&count.task_type).ready += count.count;
                }
            }
        }
        dispatch
    }

    /// Replaces the ready counts with the store's (after changes may have
    /// been missed); claims under way keep their reservations.
    pub fn reset_ready(&self, counts: &[StatusCount]) {
        let mut state = self.state.lock();
        for of in state.types.values_mut() {
            of.ready = 0;
        }
        for count in counts {
            if count.status == TaskStatus::Pending {
                state.of(&count.task_type).ready = count.count;
            }
        }
    }

    /// Follows one commit's transitions. Returns whether tasks became ready.
    pub fn observe(&self, transitions: &[Transition]) -> bool {
        let mut state = self.state.lock();
        let mut became_ready = false;
        for transition in transitions {
            if transition.from == Some(TaskStatus::Pending) {
                let of = state.of(&transition.task_type);
                of.ready = of.ready.saturating_sub(1);
            }
            if transition.to == TaskStatus::Pending {
                state.of(&transition.task_type).ready += 1;
                became_ready = true;
            }
        }
        became_ready
    }

    /// Plans a claim for an executor that serves `task_types` and has room
    /// for `free` more attempts; `None` when the limits leave no room or
    /// none of its types has ready work that no other claim is taking.
    pub fn plan(&self, limits: &ConcurrencyLimits, task_types: &[String], free: usize) -> Option<ClaimPlan> {
        let (limit, _) = limits.current();
        let mut state = self.state.lock();
        let room = limit.saturating_sub(state.running + state.reserved).min(free);
        if room == 0 {
            return None;
        }
        let mut planned = Vec::new();
        let mut taken_by_claims = false;
        for task_type in task_types {
            let Some(of) = state.types.get(task_type.as_str()) else {
                continue;
            };
            let unclaimed = of.ready.saturating_sub(of.claiming);
            taken_by_claims |= of.ready > 0 && unclaimed == 0;
            let type_room = limits
                .type_limit(task_type)
                .map_or(room, |type_limit| type_limit.saturating_sub(of.occupied));
            let most = room
                .min(type_room)
                .min(usize::try_from(unclaimed).unwrap_or(usize::MAX));
            if most > 0 {
                planned.push((task_type.clone(), most));
            }
        }
        if planned.is_empty() {
            state.refused_for_claims |= taken_by_claims;
            return None;
        }
        Some(state.reserve(planned, room))
    }

    /// Plans handing tasks about to be submitted straight to an executor in
    /// the submit's own commit (`wanted`: how many of each type it serves):
    /// room for them by the limits in force, reserved like any claim's.
    /// They are not ready yet, so the ready counts do not bound it; the
    /// claim in that commit takes the best ready tasks, which are the new
    /// ones unless better ones wait.
    pub fn plan_handoff(&self, limits: &ConcurrencyLimits, wanted: &[(String, usize)]) -> Option<ClaimPlan> {
        let (limit, _) = limits.current();
        let mut state = self.state.lock();
        let mut room = limit.saturating_sub(state.running + state.reserved);
        let mut planned = Vec::new();
        for (task_type, count) in wanted {
            let occupied = state.types.get(task_type.as_str()).map_or(0, |of| of.occupied);
            let type_room = limits
                .type_limit(task_type)
                .map_or(room, |type_limit| type_limit.saturating_sub(occupied));
            let most = room.min(type_room).min(*count);
            if most > 0 {
                planned.push((task_type.clone(), most));
                room -= most;
            }
        }
        if planned.is_empty() {
            return None;
        }
        Some(state.reserve(planned, usize::MAX))
    }

    /// Settles `plan` once its claim is answered: the room it reserved
    /// becomes the attempts it started (`started`, their types), the rest is
    /// free again. Returns whether executors it kept from work should look
    /// again (it took less than it planned while they were refused).
    ///
    /// Counts are never corrected from a short claim: a task cancelled
    /// between plan and claim would be subtracted twice, and a count too low
    /// leaves ready work waiting. A count too high costs an empty claim.
    pub fn settle<'a>(&self, plan: ClaimPlan, started: impl IntoIterator<Item = &'a str>) -> bool {
        let mut state = self.state.lock();
        state.reserved -= plan.limit;
        for (task_type, most) in &plan.task_types {
            let of = state.of(task_type);
            of.claiming -= *most as u64;
            of.occupied -= most;
        }
        let mut count = 0;
        for task_type in started {
            state.of(task_type).occupied += 1;
            count += 1;
        }
        state.running += count;
        count < plan.limit && std::mem::take(&mut state.refused_for_claims)
    }

    /// An attempt of `task_type` that ran here ended: its room is free.
    /// Returns whether ready work waits that no claim is taking, which an
    /// executor may now start.
    pub fn ended(&self, task_type: &str) -> bool {
        let mut state = self.state.lock();
        state.running = state.running.saturating_sub(1);
        let of = state.of(task_type);
        of.occupied = of.occupied.saturating_sub(1);
        state.types.values().any(|of| of.ready > of.claiming)
    }

    /// Attempts running on this node.
    pub fn running(&self) -> usize {
        self.state.lock().running
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{TaskId, TaskPriority};

    fn limits(max: usize, per_type: &[(&str, usize)]) -> ConcurrencyLimits {
        ConcurrencyLimits::new(
            max,
            per_type
                .iter()
                .map(|(task_type, limit)| (task_type.to_string(), *limit))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn ready(task_type: &str, count: u64) -> StatusCount {
        StatusCount {
            task_type: task_type.into(),
            status: TaskStatus::Pending,
            count,
        }
    }

    fn types(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn transition(task_type: &str, from: Option<TaskStatus>, to: TaskStatus) -> Transition {
        Transition {
            task_id: TaskId::new(),
            task_type: task_type.into(),
            priority: TaskPriority::Normal,
            from,
            to,
            due: None,
            waited: None,
            closed_attempt: None,
        }
    }

    #[test]
    fn work_one_executor_is_claiming_is_not_offered_to_another() {
        let dispatch = Dispatch::new(&[ready("a", 3)]);
        let limits = limits(10, &[]);
        let first = dispatch.plan(&limits, &types(&["a"]), 2).expect("work");
        assert_eq!(first.limit, 2);
        let second = dispatch.plan(&limits, &types(&["a"]), 5).expect("one left");
        assert_eq!(second.task_types, vec![("a".to_string(), 1)]);
        assert_eq!(dispatch.plan(&limits, &types(&["a"]), 5), None, "all being claimed");
    }

    #[test]
    fn executors_together_stay_within_the_limit_in_force() {
        let dispatch = Dispatch::new(&[ready("a", 100)]);
        let limits = limits(4, &[]);
        let first = dispatch.plan(&limits, &types(&["a"]), 3).expect("room");
        assert!(!dispatch.settle(first, ["a", "a", "a"]), "everything planned was taken");
        assert!(dispatch.ended("a"), "work waits");
        let refill = dispatch.plan(&limits, &types(&["a"]), 1).expect("room again");
        assert!(!dispatch.settle(refill, ["a"]));
        let second = dispatch.plan(&limits, &types(&["a"]), 3).expect("one slot left");
        assert_eq!(second.limit, 1);
        assert!(!dispatch.settle(second, ["a"]));
        assert_eq!(dispatch.plan(&limits, &types(&["a"]), 3), None, "full");
        dispatch.ended("a");
        assert_eq!(
            dispatch.plan(&limits, &types(&["a"]), 3).map(|plan| plan.limit),
            Some(1)
        );
    }

    #[test]
    fn a_type_limit_counts_the_attempts_of_every_executor() {
        let dispatch = Dispatch::new(&[ready("a", 10), ready("b", 10)]);
        let limits = limits(10, &[("a", 2)]);
        let first = dispatch.plan(&limits, &types(&["a"]), 5).expect("room");
        assert_eq!(first.task_types, vec![("a".to_string(), 2)]);
        let second = dispatch.plan(&limits, &types(&["a", "b"]), 5).expect("b has room");
        assert_eq!(second.task_types, vec![("b".to_string(), 5)]);
        let _ = dispatch.settle(first, ["a", "a"]);
        let _ = dispatch.settle(second, []);
        let third = dispatch.plan(&limits, &types(&["a", "b"]), 5).expect("b has room");
        assert_eq!(third.task_types, vec![("b".to_string(), 5)], "a is at its limit");
    }

    #[test]
    fn ready_counts_follow_the_transitions() {
        let dispatch = Dispatch::default();
        let limits = limits(10, &[]);
        assert_eq!(dispatch.plan(&limits, &types(&["a"]), 5), None, "nothing ready");
        assert!(dispatch.observe(&[transition("a", None, TaskStatus::Pending)]));
        let plan = dispatch.plan(&limits, &types(&["a"]), 5).expect("one ready");
        assert_eq!(plan.limit, 1);
        assert!(!dispatch.observe(&[transition("a", Some(TaskStatus::Pending), TaskStatus::Running)]));
        assert!(!dispatch.settle(plan, ["a"]), "nothing left for others");
        assert_eq!(dispatch.plan(&limits, &types(&["a"]), 5), None);
    }

    #[test]
    fn a_claim_that_took_less_than_planned_tells_others_to_look_again() {
        let dispatch = Dispatch::new(&[ready("a", 2)]);
        let limits = limits(10, &[]);
        let plan = dispatch.plan(&limits, &types(&["a"]), 2).expect("work");
        // Another executor looks while the claim is under way: nothing left.
        assert_eq!(dispatch.plan(&limits, &types(&["a"]), 5), None);
        // The claim found only one (another node took the other, say).
        assert!(dispatch.settle(plan, ["a"]), "the refused look again");
        let again = dispatch.plan(&limits, &types(&["a"]), 5).expect("the count says one");
        assert!(
            !dispatch.settle(again, []),
            "nobody was refused meanwhile: no endless retries"
        );
    }
}
