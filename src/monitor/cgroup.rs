//! The memory limit of this process's cgroup, when it has one: in a
//! container the machine's RAM is not what the process may use, and the
//! kernel kills it at the cgroup's limit, not at the machine's.
//!
//! Both cgroup versions are read: v2 (`memory.max`, `memory.current`) and
//! v1 (`memory.limit_in_bytes`, `memory.usage_in_bytes`). Usage counts
//! what the kernel cannot simply drop: the page cache's inactive files are
//! subtracted, as `docker stats` and the kubelet's working set do.

use std::path::{Path, PathBuf};

/// A cgroup's memory limit and current use, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupMemory {
    pub limit: u64,
    pub used: u64,
}

/// Limits at or above this are "no limit" (v1 writes 2^63 rounded to a
/// page).
const UNLIMITED: u64 = 1 << 60;

/// Where a process's memory cgroup lives, found from `/proc/self/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupFiles {
    dir: PathBuf,
    v2: bool,
}

impl CgroupFiles {
    /// This process's memory cgroup under the standard mount, if any.
    pub fn of_this_process() -> Option<Self> {
        let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        Self::find(&membership, Path::new("/sys/fs/cgroup"))
    }

    /// From the text of `/proc/<pid>/cgroup` and the cgroup mount root.
    pub fn find(membership: &str, root: &Path) -> Option<Self> {
        let (path, v2) = memory_cgroup_path(membership)?;
        let base = if v2 { root.to_path_buf() } else { root.join("memory") };
        let relative = path.trim_start_matches('/');
        // Inside a cgroup namespace the listed path may not exist under
        // the mount, whose root is then the process's own cgroup.
        let candidates = [base.join(relative), base];
        let limit_file = if v2 { "memory.max" } else { "memory.limit_in_bytes" };
        candidates
            .into_iter()
            .find(|dir| dir.join(limit_file).is_file())
            .map(|dir| CgroupFiles { dir, v2 })
    }

    /// The limit and use now; None when there is no limit.
    pub fn read(&self) -> Option<CgroupMemory> {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).ok();
        let (limit, usage, inactive_key) = if self.v2 {
            (read("memory.max")?, read("memory.current")?, "inactive_file")
        } else {
            (
                read("memory.limit_in_bytes")?,
                read("memory.usage_in_bytes")?,
                "total_inactive_file",
            )
        };
        let limit = parse_limit(&limit)?;
        let usage: u64 = usage.trim().parse().ok()?;
        let inactive = read("memory.stat")
            .and_then(|stat| stat_value(&stat, inactive_key))
            .unwrap_or(0);
        Some(CgroupMemory {
            limit,
            used: usage.saturating_sub(inactive),
        })
    }
}

/// The memory controller's path in `/proc/<pid>/cgroup`, and whether it is
/// the unified (v2) hierarchy. A v1 memory controller wins over v2, since
/// on a hybrid system the limits are set there.
fn memory_cgroup_path(membership: &str) -> Option<(String, bool)> {
    let mut unified = None;
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if controllers.split(',').any(|controller| controller == "memory") {
            return Some((path.to_string(), false));
        }
        if id == "0" && controllers.is_empty() {
            unified = Some((path.to_string(), true));
        }
    }
    unified
}

fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse::<u64>()
        .ok()
        .filter(|limit| *limit > 0 && *limit < UNLIMITED)
}

fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_controller_is_found_in_either_version() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
        assert_eq!(memory_cgroup_path(hybrid), Some(("/process_api/abc".into(), false)));
        let unified = "0::/system.slice/taskd.service\n";
        assert_eq!(
            memory_cgroup_path(unified),
            Some(("/system.slice/taskd.service".into(), true))
        );
        let combined = "5:cpu,memory:/box\n";
        assert_eq!(memory_cgroup_path(combined), Some(("/box".into(), false)));
        assert_eq!(memory_cgroup_path("garbage"), None);
    }

    #[test]
    fn no_limit_reads_as_none() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("0"), None);
        assert_eq!(parse_limit("536870912\n"), Some(512 << 20));
    }

    #[test]
    fn a_v2_cgroup_with_a_limit_reports_its_working_set() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("system.slice/taskd.service");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.max"), "1073741824\n").unwrap();
        std::fs::write(dir.join("memory.current"), "600000000\n").unwrap();
        std::fs::write(
            dir.join("memory.stat"),
            "anon 400000000\ninactive_file 100000000\nactive_file 5\n",
        )
        .unwrap();
        let files = CgroupFiles::find("0::/system.slice/taskd.service\n", root.path()).unwrap();
        assert_eq!(
            files.read(),
            Some(CgroupMemory {
                limit: 1 << 30,
                used: 500_000_000
            })
        );
    }

    #[test]
    fn inside_a_namespace_the_mount_root_is_the_processs_cgroup() {
        let root = tempfile::tempdir().unwrap();
        let memory = root.path().join("memory");
        std::fs::create_dir_all(&memory).unwrap();
        std::fs::write(memory.join("memory.limit_in_bytes"), "268435456\n").unwrap();
        std::fs::write(memory.join("memory.usage_in_bytes"), "200000000\n").unwrap();
        std::fs::write(memory.join("memory.stat"), "total_inactive_file 50000000\n").unwrap();
        let files = CgroupFiles::find("4:memory:/docker/0123\n", root.path()).unwrap();
        assert_eq!(
            files.read(),
            Some(CgroupMemory {
                limit: 256 << 20,
                used: 150_000_000
            })
        );
    }
}
