//! Cost of one ResourceMonitor sample on this machine (CPU, memory, the data
//! dir's disk, /proc/stat I/O wait), timed call by call.
//!
//! Run: `cargo bench --bench sampler`. Samples are spaced 250 ms apart, as
//! a monitor takes them: sysinfo skips the CPU refresh within 200 ms of the
//! previous one, so back-to-back calls would look cheaper than they are.

use std::time::{Duration, Instant};

use taskd::monitor::SampleSource;
use taskd::monitor::system_source::SystemSource;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut source = SystemSource::new(dir.path());
    let mut spaced = Vec::new();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        let started = Instant::now();
        let sample = source.sample();
        spaced.push(started.elapsed());
        std::hint::black_box(sample);
    }
    let started = Instant::now();
    for _ in 0..200 {
        std::hint::black_box(source.sample());
    }
    let back_to_back = started.elapsed() / 200;
    spaced.sort();
    let mean: Duration = spaced.iter().sum::<Duration>() / spaced.len() as u32;
    println!(
        "sample cost, spaced 250 ms: mean {:?}, median {:?}, max {:?}",
        mean,
        spaced[spaced.len() / 2],
        spaced[spaced.len() - 1]
    );
    println!("sample cost, back to back (CPU refresh skipped): mean {back_to_back:?}");
    println!(
        "at the default 1 s interval: {:.3}% of one core",
        mean.as_secs_f64() * 100.0
    );
}
