//! Extract-and-shred: `securepipe worker` turns one partition's envelope-encrypted raw
//! samples into verified features, then deletes every raw version.
//!
//! For each current raw version under `<raw-prefix><partition>/` (this shard's share):
//! get it pinned → decrypt in memory (allowed KMS keys, required context
//! `securepipe:partition`) → decode and compute features exactly as `securepipe features`
//! → put the `.npy` with a SHA-256 checksum and source metadata → verify it → delete every
//! raw version (in batches) → attest. A sample that fails authentication or decoding is quarantined
//! (tagged, kept); a transient failure leaves it for the next run. Depends on api, cloud,
//! envelope and dsp; never on Kubernetes.

pub mod args;
mod existing;
pub mod failpoint;
mod features;
mod metadata;
pub mod quarantine;
pub mod run;
mod sample;
pub mod settings;
mod shred;

pub use args::Args;
pub use run::{RunError, Summary, run};
pub use sample::PARTITION_CONTEXT_KEY;
pub use settings::{Settings, SettingsError};
