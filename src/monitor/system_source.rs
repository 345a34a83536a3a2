//! The real [`SampleSource`]: reads this machine's CPU, memory, disk and
//! I/O-wait figures.
//!
//! CPU, memory and disk come from `sysinfo`, so they work on every platform it
//! supports. I/O wait has no portable source, so it is read from `/proc/stat`
//! on Linux and reported as `None` elsewhere.
//!
//! CPU usage and I/O wait are rates: each is the share of CPU time since the
//! previous sample, so the source keeps the previous counters between calls
//! and [`SystemSource::new`] takes a first reading to give the first
//! [`SampleSource::sample`] something to compare against.
//!
//! Nothing here fails: a figure that cannot be read is reported as 0 (or
//! `None` for I/O wait), because a sampler that errors out would stop the
//! monitor, while a missing figure only makes it less informed.

use std::path::{Path, PathBuf};

use sysinfo::{MemoryRefreshKind, System};

use crate::model::Timestamp;
use crate::monitor::sample::{ResourceSample, SampleSource};

/// Samples the machine this process runs on.
///
/// Keeps its `sysinfo` handle between calls: CPU usage is computed by
/// `sysinfo` relative to the previous refresh of the same `System`.
pub struct SystemSource {
    data_dir: PathBuf,
    /// `None` only if `sysinfo` cannot initialise on this platform; CPU and
    /// memory then read as 0.
    system: Option<System>,
    /// This process's memory cgroup, when it has one (found once).
    cgroup: Option<crate::monitor::cgroup::CgroupFiles>,
    #[cfg(target_os = "linux")]
    io_wait: proc_stat::IoWaitTracker,
}

impl SystemSource {
    /// Prepares to sample the machine, with disk usage measured on the
    /// filesystem that holds `data_dir`.
    ///
    /// The data dir is canonicalized so that symlinks resolve to the
    /// filesystem that really holds it; if it does not exist yet, its nearest
    /// existing ancestor is measured instead.
    ///
    /// Takes a first CPU and I/O-wait reading so that the first `sample()`
    /// reports the usage since now rather than since boot. `sysinfo` ignores
    /// CPU refreshes less than [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`]
    /// (200 ms on Linux) after the previous one and keeps reporting the older
    /// figure, so sample no more often than that.
    pub fn new(data_dir: &Path) -> Self {
        let data_dir = resolve(data_dir);

        let system = System::new().ok().map(|mut system| {
            system.refresh_cpu_usage();
            system
        });

        Self {
            data_dir,
            system,
            cgroup: crate::monitor::cgroup::CgroupFiles::of_this_process(),
            #[cfg(target_os = "linux")]
            io_wait: proc_stat::IoWaitTracker::primed(),
        }
    }

    /// The data dir as resolved at construction, whose filesystem
    /// `disk_percent` describes.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn cpu_and_memory(&mut self) -> (f64, f64) {
        let Some(system) = self.system.as_mut() else {
            return (0.0, 0.0);
        };
        system.refresh_cpu_usage();
        system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let cpu = percent(f64::from(system.global_cpu_usage()));
        // `used_memory` is `total - available` on Linux, but it subtracts
        // without saturating and its meaning differs by platform, so compute
        // "in use by programs" directly: everything not available for reuse.
        let total = system.total_memory();
        let machine = (total.saturating_sub(system.available_memory()), total);
        // In a container, the cgroup's limit is the one that matters when it
        // is below the machine's memory.
        let (used, limit) = match self.cgroup.as_ref().and_then(|cgroup| cgroup.read()) {
            Some(cgroup) if cgroup.limit < total => (cgroup.used, cgroup.limit),
            _ => machine,
        };
        (cpu, share(used, limit))
    }

    /// Disk use as `df` shows it for the data dir's filesystem (tmpfs
    /// included): used / (used + available to unprivileged users), so the
    /// blocks reserved for root count as neither.
    #[cfg(unix)]
    fn disk(&mut self) -> f64 {
        let existing = self
            .data_dir
            .ancestors()
            .find(|dir| dir.exists())
            .unwrap_or(Path::new("/"));
        match rustix::fs::statvfs(existing) {
            Ok(stats) => {
                let used = stats.f_blocks.saturating_sub(stats.f_bfree);
                share(used, used.saturating_add(stats.f_bavail))
            }
            Err(error) => {
                tracing::debug!(%error, dir = %existing.display(), "statvfs of the data dir failed");
                0.0
            }
        }
    }

    #[cfg(not(unix))]
    fn disk(&mut self) -> f64 {
        0.0
    }

    #[cfg(target_os = "linux")]
    fn io_wait(&mut self) -> Option<f64> {
        self.io_wait.next()
    }

    #[cfg(not(target_os = "linux"))]
    fn io_wait(&mut self) -> Option<f64> {
        None
    }
}

impl SampleSource for SystemSource {
    fn sample(&mut self) -> ResourceSample {
        let (cpu_percent, memory_percent) = self.cpu_and_memory();
        let disk_percent = self.disk();
        let io_wait_percent = self.io_wait().map(percent);
        ResourceSample {
            time: Timestamp::now(),
            cpu_percent,
            memory_percent,
            disk_percent,
            io_wait_percent,
        }
    }
}

/// `path` made absolute with symlinks resolved, as far as it exists.
///
/// A data dir that does not exist yet still lives on the filesystem of its
/// nearest existing ancestor, so that ancestor is canonicalized and the
/// missing tail appended.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for ancestor in absolute.ancestors() {
        if let Ok(real) = ancestor.canonicalize() {
            return match absolute.strip_prefix(ancestor) {
                Ok(rest) if !rest.as_os_str().is_empty() => real.join(rest),
                _ => real,
            };
        }
    }
    absolute
}

/// `part` as a percentage of `whole`; 0 when `whole` is 0.
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    percent(part as f64 / whole as f64 * 100.0)
}

/// Clamps to 0..=100, with NaN as 0, so consumers never see an impossible
/// value even if a counter misbehaves.
fn percent(value: f64) -> f64 {
    if value.is_nan() { 0.0 } else { value.clamp(0.0, 100.0) }
}

/// I/O wait from the kernel's aggregate CPU time counters.
///
/// Kept free of I/O apart from [`IoWaitTracker`] reading the file, so the
/// parsing and arithmetic are tested on literal text on any platform.
#[cfg(any(target_os = "linux", test))]
mod proc_stat {
    /// The aggregate CPU counters this module needs, in clock ticks since boot.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct CpuTimes {
        pub(super) iowait: u64,
        /// user + nice + system + idle + iowait + irq + softirq + steal. Guest
        /// time is left out because the kernel already counts it in user/nice.
        pub(super) total: u64,
    }

    /// The counters from the first `cpu ` line of `/proc/stat` text; `None`
    /// if there is no such line or it has fewer than eight numeric fields.
    pub(super) fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find_map(|line| line.strip_prefix("cpu "))?;
        let mut fields = line.split_whitespace().map(|field| field.parse::<u64>().ok());
        let mut total: u64 = 0;
        let mut iowait = 0;
        for position in 0..8 {
            let value = fields.next().flatten()?;
            // Field order: user nice system idle iowait irq softirq steal.
            if position == 4 {
                iowait = value;
            }
            total = total.checked_add(value)?;
        }
        Some(CpuTimes { iowait, total })
    }

    /// Percentage of CPU time spent in I/O wait between two readings; `None`
    /// if no time was accounted in between (or the counters went backwards).
    ///
    /// The kernel's iowait counter may itself step backwards slightly, so its
    /// delta saturates at 0 instead of being trusted.
    pub(super) fn io_wait_percent(previous: CpuTimes, current: CpuTimes) -> Option<f64> {
        let elapsed = current.total.checked_sub(previous.total).filter(|&ticks| ticks > 0)?;
        let waited = current.iowait.saturating_sub(previous.iowait);
        Some(waited as f64 / elapsed as f64 * 100.0)
    }

    /// Remembers the previous reading between samples.
    #[cfg(target_os = "linux")]
    pub(super) struct IoWaitTracker {
        previous: Option<CpuTimes>,
        last: Option<f64>,
    }

    #[cfg(target_os = "linux")]
    impl IoWaitTracker {
        /// Starts from the current counters, so the first [`Self::next`]
        /// covers the time since now.
        pub(super) fn primed() -> Self {
            Self {
                previous: read(),
                last: None,
            }
        }

        /// I/O wait since the previous reading.
        ///
        /// If no clock tick has passed since then (samples taken back to
        /// back), the previous reading is kept as the baseline and the last
        /// figure is repeated, rather than reporting a meaningless 0/0.
        pub(super) fn next(&mut self) -> Option<f64> {
            let current = read()?;
            let Some(previous) = self.previous else {
                self.previous = Some(current);
                return None;
            };
            match io_wait_percent(previous, current) {
                Some(value) => {
                    self.previous = Some(current);
                    self.last = Some(value);
                    Some(value)
                }
                None => {
                    if current.total < previous.total {
                        // Counters reset: start over from here.
                        self.previous = Some(current);
                        self.last = None;
                    }
                    self.last
                }
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn read() -> Option<CpuTimes> {
        parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::proc_stat::{CpuTimes, io_wait_percent, parse};
    use super::*;

    const STAT_BEFORE: &str = "cpu  100 5 50 800 20 3 2 10 7 0\n\
                               cpu0 50 2 25 400 10 1 1 5 3 0\n\
                               intr 12345 0 0\n";
    const STAT_AFTER: &str = "cpu  160 5 70 900 50 4 3 18 9 0\n\
                              cpu0 80 2 35 450 25 2 1 9 4 0\n";

    #[test]
    fn the_first_cpu_line_sums_eight_fields_and_keeps_iowait() {
        assert_eq!(parse(STAT_BEFORE), Some(CpuTimes { iowait: 20, total: 990 }));
        assert_eq!(
            parse(STAT_AFTER),
            Some(CpuTimes {
                iowait: 50,
                total: 1210
            })
        );
    }

    #[test]
    fn io_wait_is_the_iowait_share_of_the_ticks_between_readings() {
        let (Some(before), Some(after)) = (parse(STAT_BEFORE), parse(STAT_AFTER)) else {
            panic!("literal /proc/stat text did not parse");
        };
        // 30 of 220 ticks were spent waiting for I/O.
        let value = io_wait_percent(before, after).unwrap();
        assert!((value - 30.0 / 220.0 * 100.0).abs() < 1e-9, "got {value}");
    }

    #[test]
    fn the_aggregate_line_is_found_after_other_lines() {
        let stat = "intr 1 2 3\ncpu0 1 1 1 1 1 1 1 1\ncpu  1 2 3 4 5 6 7 8\n";
        assert_eq!(parse(stat), Some(CpuTimes { iowait: 5, total: 36 }));
    }

    #[test]
    fn malformed_stat_text_gives_none() {
        for stat in [
            "",
            "intr 1 2 3\n",
            "cpu0 1 2 3 4 5 6 7 8\n",
            "cpu  1 2 3 4 5 6 7\n",
            "cpu  1 2 3 x 5 6 7 8\n",
            "cpu  1 2 3 -4 5 6 7 8\n",
            "cpu  1 2 3 4 5.5 6 7 8\n",
            "cpu  18446744073709551615 1 0 0 0 0 0 0\n",
            "cpu",
        ] {
            assert_eq!(parse(stat), None, "{stat:?}");
        }
    }

    #[test]
    fn no_elapsed_ticks_or_counters_going_backwards_give_no_io_wait() {
        let times = CpuTimes { iowait: 10, total: 100 };
        assert_eq!(io_wait_percent(times, times), None);
        assert_eq!(io_wait_percent(times, CpuTimes { iowait: 10, total: 50 }), None);
    }

    #[test]
    fn an_iowait_counter_stepping_back_counts_as_no_waiting() {
        let before = CpuTimes { iowait: 10, total: 100 };
        let after = CpuTimes { iowait: 8, total: 200 };
        assert_eq!(io_wait_percent(before, after), Some(0.0));
    }

    #[test]
    fn percentages_are_clamped_and_nan_is_zero() {
        assert_eq!(percent(f64::NAN), 0.0);
        assert_eq!(percent(-3.0), 0.0);
        assert_eq!(percent(140.0), 100.0);
        assert_eq!(percent(f64::INFINITY), 100.0);
        assert_eq!(percent(42.5), 42.5);
        assert_eq!(share(1, 0), 0.0);
        assert_eq!(share(1, 4), 25.0);
    }

    #[test]
    fn a_missing_data_dir_resolves_through_its_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet/created");
        let resolved = resolve(&missing);
        assert!(resolved.is_absolute());
        assert_eq!(resolved, dir.path().canonicalize().unwrap().join("not/yet/created"));
    }

    #[cfg(unix)]
    #[test]
    fn disk_use_reads_as_df_does_on_the_data_dirs_own_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let mut source = SystemSource::new(&dir.path().join("not/created/yet"));
        let df = std::process::Command::new("df")
            .args(["--output=pcent"])
            .arg(dir.path())
            .output()
            .expect("df runs");
        let text = String::from_utf8_lossy(&df.stdout);
        let df_percent: f64 = text
            .lines()
            .nth(1)
            .and_then(|line| line.trim().trim_end_matches('%').parse().ok())
            .expect("df prints a percentage");
        // df rounds up; the disk may also change a little in between.
        let ours = source.disk();
        assert!((ours - df_percent).abs() <= 2.0, "ours {ours:.1}% vs df {df_percent}%");
    }

    /// Busy and I/O-wait clock ticks and the total, from `/proc/stat`.
    #[cfg(target_os = "linux")]
    fn kernel_cpu() -> (u64, u64, u64) {
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        let fields: Vec<u64> = stat
            .lines()
            .find_map(|line| line.strip_prefix("cpu "))
            .unwrap()
            .split_whitespace()
            .take(8)
            .map(|field| field.parse().unwrap())
            .collect();
        let total: u64 = fields.iter().sum();
        // user nice system idle iowait irq softirq steal
        (total - fields[3] - fields[4], fields[4], total)
    }

    /// Memory in use by programs, in percent, as the kernel counts it (the
    /// cgroup's when its limit is below the machine's memory).
    #[cfg(target_os = "linux")]
    fn kernel_memory() -> f64 {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kilobytes = |name: &str| -> u64 {
            meminfo
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap()
        };
        let (total, available) = (kilobytes("MemTotal:") * 1024, kilobytes("MemAvailable:") * 1024);
        match crate::monitor::cgroup::CgroupFiles::of_this_process().and_then(|cgroup| cgroup.read()) {
            Some(cgroup) if cgroup.limit < total => cgroup.used as f64 / cgroup.limit as f64 * 100.0,
            _ => (total - available) as f64 / total as f64 * 100.0,
        }
    }

    /// Each figure against the kernel's own counters over the same moments:
    /// a sampler that read the wrong counter, or the right one wrongly,
    /// disagrees (disk has its own test, against `df`).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_real_machines_figures_agree_with_the_kernels_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut source = SystemSource::new(dir.path());
        let before = kernel_cpu();
        // CPU and I/O wait are shares of the time between two readings.
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL * 2);
        let sample = source.sample();
        let after = kernel_cpu();
        let memory = kernel_memory();
        let ticks = (after.2 - before.2) as f64;
        let busy = (after.0 - before.0) as f64 / ticks * 100.0;
        let io_wait = (after.1 - before.1) as f64 / ticks * 100.0;
        assert!(
            (sample.cpu_percent - busy).abs() <= 10.0,
            "cpu: ours {:.1}% vs the kernel's {busy:.1}%",
            sample.cpu_percent
        );
        let ours = sample.io_wait_percent.expect("Linux reports I/O wait");
        assert!(
            (ours - io_wait).abs() <= 5.0,
            "io wait: ours {ours:.1}% vs the kernel's {io_wait:.1}%"
        );
        assert!(
            (sample.memory_percent - memory).abs() <= 2.0,
            "memory: ours {:.1}% vs the kernel's {memory:.1}%",
            sample.memory_percent
        );
    }

    #[cfg(not(target_os = "linux"))]
    #[test]
    fn io_wait_is_not_reported_where_the_platform_has_no_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut source = SystemSource::new(dir.path());
        assert_eq!(source.sample().io_wait_percent, None);
    }
}
