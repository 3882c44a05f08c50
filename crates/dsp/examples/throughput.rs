//! Single-thread throughput of the feature extractor, for tests/bench/dsp-vs-librosa.sh.
//!
//! Times are this thread's on-CPU time (Linux `/proc/thread-self/schedstat`, in ns), best of
//! repeated runs, so a busy machine inflates them less; the librosa side measures the same way
//! (`time.thread_time`).
//!
//! `throughput FILE.wav...` prints, per file, `file<TAB>rate<TAB>seconds<TAB>frames<TAB>
//! x-real-time` for MFCC at librosa's default parameters (best of repeated runs).
//! `throughput --end-to-end FILE.wav...` prints the same columns for the whole path of
//! `securepipe features` and the worker: read the file, `wav_features` (parse, build the
//! extractor, MFCC), encode the `.npy` and write it.
//! `throughput --fft N` prints the best time in ns of one bare N-point f32 real FFT (plan
//! reused, scratch preallocated): the floor any STFT pipeline pays per frame.

use std::error::Error;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use realfft::RealFftPlanner;
use securepipe_dsp::{
    FeatureExtractor, FeatureKind, FeatureParams, decode_wav, wav_features, write_npy,
};

/// Measurements keep the best sample taken within this much wall time (at least 5 samples).
const BUDGET: Duration = Duration::from_millis(3000);
/// A sample repeats the work until it has taken this much CPU time: the kernel updates a
/// running thread's `schedstat` only at ticks and switches, so short samples would be coarse.
const SAMPLE: Duration = Duration::from_millis(200);

/// On-CPU time of the calling thread so far.
fn thread_cpu_time() -> Result<Duration, Box<dyn Error>> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns = stat
        .split_whitespace()
        .next()
        .ok_or("empty /proc/thread-self/schedstat")?
        .parse()?;
    Ok(Duration::from_nanos(ns))
}

/// The best on-CPU time of one `run`.
fn best_of<F: FnMut() -> Result<(), Box<dyn Error>>>(
    mut run: F,
) -> Result<Duration, Box<dyn Error>> {
    run()?;
    let started = Instant::now();
    let mut best = Duration::MAX;
    let mut samples = 0;
    while samples < 5 || started.elapsed() < BUDGET {
        let t = thread_cpu_time()?;
        let mut runs = 0u32;
        let mut spent = Duration::ZERO;
        while spent < SAMPLE {
            run()?;
            runs += 1;
            spent = thread_cpu_time()? - t;
        }
        best = best.min(spent / runs);
        samples += 1;
    }
    Ok(best)
}

fn fft_ns(n: usize) -> Result<f64, Box<dyn Error>> {
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let mut input = fft.make_input_vec();
    let mut output = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    const BATCH: u32 = 1000;
    let best = best_of(|| {
        for i in 0..BATCH {
            input
                .iter_mut()
                .enumerate()
                .take(4)
                .for_each(|(k, x)| *x = (i as usize + k) as f32);
            fft.process_with_scratch(&mut input, &mut output, &mut scratch)?;
            black_box(&output);
        }
        Ok(())
    })?;
    Ok(best.as_secs_f64() * 1e9 / f64::from(BATCH))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, n] = args.as_slice()
        && flag == "--fft"
    {
        println!("{:.1}", fft_ns(n.parse()?)?);
        return Ok(());
    }
    if let Some((flag, paths)) = args.split_first()
        && flag == "--end-to-end"
    {
        for path in paths {
            end_to_end(path)?;
        }
        return Ok(());
    }
    for path in &args {
        let audio = decode_wav(&std::fs::read(path)?)?;
        let mut extractor = FeatureExtractor::new(FeatureParams::new(audio.sample_rate))?;
        let mut frames = 0;
        let best = best_of(|| {
            frames = black_box(extractor.mfcc(&audio.samples)?).frames();
            Ok(())
        })?;
        let seconds = audio.samples.len() as f64 / f64::from(audio.sample_rate);
        println!(
            "{path}\t{}\t{seconds}\t{frames}\t{:.1}",
            audio.sample_rate,
            seconds / best.as_secs_f64()
        );
    }
    Ok(())
}

/// Read and decode, extract, encode and write, as `securepipe features` does.
fn end_to_end(path: &str) -> Result<(), Box<dyn Error>> {
    let out = std::env::temp_dir().join(format!("throughput-{}.npy", std::process::id()));
    let mut frames = 0;
    let (rate, seconds) = {
        let audio = decode_wav(&std::fs::read(path)?)?;
        let rate = audio.sample_rate;
        (rate, audio.samples.len() as f64 / f64::from(rate))
    };
    let best = best_of(|| {
        let wav = std::fs::read(path)?;
        let features = wav_features(&wav, FeatureKind::Mfcc, FeatureParams::new, &mut None)?;
        let mut npy = BufWriter::new(File::create(&out)?);
        write_npy(&mut npy, &features)?;
        npy.flush()?;
        frames = features.frames();
        Ok(())
    })?;
    std::fs::remove_file(&out)?;
    println!(
        "{path}\t{rate}\t{seconds}\t{frames}\t{:.1}",
        seconds / best.as_secs_f64()
    );
    Ok(())
}
