//! Crash points at the step boundaries of one sample, for the crash-and-rerun tests. With
//! the `failpoints` feature, `FAILPOINTS=worker::after-put=return` makes the process exit
//! with [`CRASH_EXIT_CODE`] the first time a sample reaches that boundary, as a killed Pod
//! would; without the feature (every release build) these calls compile to nothing.

/// The exit status of a process stopped at a failpoint.
pub const CRASH_EXIT_CODE: i32 = 86;

/// Every failpoint, in the order a sample passes them.
pub const ALL: [&str; 8] = [
    "worker::after-get",
    "worker::after-decrypt",
    "worker::after-features",
    "worker::after-put",
    "worker::after-verify",
    "worker::after-delete-noncurrent",
    "worker::after-delete",
    "worker::before-attestation",
];

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
