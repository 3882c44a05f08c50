//! Crash points at the step boundaries of one sample, for the crash-and-rerun tests. With
//! the `failpoints` feature, `FAILPOINTS=worker::after-put=return` makes the process exit
//! with [`CRASH_EXIT_CODE`] the first time a sample reaches that boundary, as a killed Pod
//! would; without the feature (every release build) these calls compile to nothing.
//!
//! In the order a sample passes them: `worker::after-get`, `after-decrypt`,
//! `after-features`, `after-put`, `after-verify`; then once per deletion batch
//! `after-delete-noncurrent` and `after-delete`; then once per run
//! `worker::before-attestation`.

/// The exit status of a process stopped at a failpoint.
pub const CRASH_EXIT_CODE: i32 = 86;

/// Reads `FAILPOINTS`; keep the guard for the whole run.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

#[cfg(feature = "failpoints")]
pub fn point(name: &str) {
    fail::fail_point!(name, |_| {
        tracing::warn!(failpoint = name, "stopping the process at a failpoint");
        std::process::exit(CRASH_EXIT_CODE)
    });
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn point(_name: &str) {}
