//! The fuzz target's body (`crate::fuzzing::check`) on stable Rust, over a fixed pseudo-random
//! sequence of inputs: mutations of valid messages (flips, overwrites, insertions, deletions,
//! truncations, splices) and random bytes, in both modes. Not coverage-guided — that is
//! `cargo fuzz run parse_message` (crates/envelope/fuzz) — but it runs everywhere, every time.

use crate::fuzzing::{check, seed_messages};

/// xorshift64*: a fixed, dependency-free sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..=rng.below(3) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 1 => {
                let at = 1 + rng.below(len - 1);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 1 => {
                let at = 1 + rng.below(len - 1);
                input[at] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(len + 1).max(1).min(len);
                input.insert(at, rng.next() as u8);
            }
            3 if len > 1 => {
                input.remove(1 + rng.below(len - 1));
            }
            4 => input.truncate(rng.below(len + 1)),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let at = rng.below(len + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                // Big-endian length and count fields are where parsers break: set one to
                // an extreme value.
                if len > 3 {
                    let at = 1 + rng.below(len - 3);
                    let value = [0x00, 0xFF, 0x7F, 0x80][rng.below(4)];
                    input[at] = value;
                    input[at + 1] = value;
                }
            }
        }
    }
}

#[test]
fn fuzz_body_holds_on_20000_pseudo_random_inputs() {
    let iterations: usize = std::env::var("SECUREPIPE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seeds = seed_messages();
    assert_eq!(seeds.len(), 8, "two suites x four shapes");
    for seed in &seeds {
        check(seed);
    }
    let mut rng = Rng(0x5EC0_7E57_F022_0001);
    for i in 0..iterations {
        let input = match i % 4 {
            // Random bytes, odd selector: a random body after a valid header.
            0 => {
                let mut input: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
                if let Some(first) = input.first_mut() {
                    *first |= 1;
                }
                input
            }
            _ => {
                let mut input = seeds[rng.below(seeds.len())].clone();
                if i % 4 == 3 {
                    // The body of a valid message after the fixed header of the same suite.
                    if let Ok((_, len)) = crate::Header::parse(&input[1..]) {
                        input.drain(1..=len);
                        input[0] = 1 + 2 * (rng.below(2) as u8);
                    }
                }
                mutate(&mut rng, &seeds, &mut input);
                input
            }
        };
        check(&input);
    }
}

/// The fuzz corpus seeds committed in crates/envelope/fuzz/seeds are valid messages (selector
/// byte + message) for the current format. `SECUREPIPE_WRITE_FUZZ_SEEDS=1` rewrites them.
#[test]
fn committed_fuzz_seeds_decrypt() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    if std::env::var_os("SECUREPIPE_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in seed_messages().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
        }
    }
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    seeds.sort();
    assert_eq!(seeds.len(), 8, "{}", dir.display());
    let decryptor = crate::Decryptor::new(crate::keyring::StaticKeyring::new(
        crate::fuzzing::FUZZ_WRAPPING_KEY,
    ));
    for path in seeds {
        let input = std::fs::read(&path).unwrap();
        assert_eq!(input[0], 0, "{}: whole-message selector", path.display());
        super::support::block_on(decryptor.decrypt_to_vec(&input[1..]))
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    }
}

/// Every input the coverage-guided runs kept (crates/envelope/fuzz/corpus, committed after
/// `make fuzz-envelope` and `cargo fuzz cmin`) still holds the fuzz body's invariants: the
/// coverage-guided runs are out of `make test`, their findings are not.
#[test]
fn committed_fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 100,
        "{}: {} inputs; the committed corpus is missing",
        dir.display(),
        inputs.len()
    );
    for path in inputs {
        check(&std::fs::read(&path).unwrap());
    }
}
