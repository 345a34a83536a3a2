//! Measuring: rates from concurrent loops, percentiles, medians.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Runs `call` from `concurrency` loops for `seconds`; returns calls/s.
pub async fn rate<F, Fut>(concurrency: usize, seconds: u64, call: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u64> + Send,
{
    let call = Arc::new(call);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut loops = Vec::new();
    for worker in 0..concurrency {
        let (call, done, stop) = (call.clone(), done.clone(), stop.clone());
        loops.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let count = call(worker).await;
                done.fetch_add(count, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        let _ = handle.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The `fraction` percentile of `values` (sorted here).
pub fn percentile(values: &mut [f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() - 1) as f64 * fraction).round() as usize;
    values[index]
}

pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

pub fn rounded(values: &[f64]) -> String {
    values
        .iter()
        .map(|value| format!("{value:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// How long one `fdatasync` of a small append takes in `dir`: the floor of
/// a durable commit on this disk.
pub fn fsync_micros(dir: &std::path::Path, samples: usize) -> Vec<f64> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let block = [7_u8; 4096];
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        file.write_all(&block).expect("write");
        let started = Instant::now();
        file.sync_data().expect("fdatasync");
        times.push(micros(started.elapsed()));
    }
    let _ = std::fs::remove_file(path);
    times
}
