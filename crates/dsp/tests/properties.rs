//! Properties that hold for every input, not just the golden cases: any finite signal gives
//! finite features, centred framing gives `1 + len / hop` frames, and an extractor's output does
//! not depend on what its buffers held from earlier signals.

use proptest::prelude::*;
use securepipe_dsp::{FeatureExtractor, FeatureKind, FeatureParams, MelScale};

/// A parameter set drawn from the shapes the worker uses: even, odd and non-power-of-two FFTs,
/// short windows, with and without `top_db`, both mel scales.
fn params() -> impl Strategy<Value = FeatureParams> {
    (
        prop::sample::select(vec![8000u32, 16_000, 22_050, 44_100]),
        prop::sample::select(vec![64usize, 255, 256, 400, 512, 2048]),
        1usize..700,
        prop::sample::select(vec![1usize, 13, 40, 128]),
        any::<bool>(),
        prop::option::of(0.0f64..120.0),
        any::<bool>(),
    )
        .prop_map(|(rate, n_fft, hop, n_mels, htk, top_db, short_window)| {
            let mut params = FeatureParams::new(rate);
            params.n_fft = n_fft;
            params.hop_length = hop;
            params.win_length = short_window.then_some(n_fft / 2 + 1);
            params.n_mels = n_mels;
            params.n_mfcc = n_mels.min(20);
            params.top_db = top_db;
            if htk {
                params.mel_scale = MelScale::Htk;
            }
            params
        })
}

/// Finite samples of every magnitude: zeros, subnormals, ordinary audio, and huge values.
fn sample() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(0.0f32),
        -1.0f32..1.0,
        prop::num::f32::NORMAL | prop::num::f32::SUBNORMAL | prop::num::f32::ZERO,
    ]
}

fn signal() -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        (0usize..3000).prop_map(|len| vec![0.0; len]),
        prop::collection::vec(sample(), 0..3000),
    ]
}

fn kind() -> impl Strategy<Value = FeatureKind> {
    prop_oneof![Just(FeatureKind::Mfcc), Just(FeatureKind::LogMel)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_finite_signal_gives_finite_features(
        params in params(),
        signal in signal(),
        kind in kind(),
    ) {
        let odd_fft = params.n_fft % 2 == 1;
        let mut extractor = FeatureExtractor::new(params).expect("valid params");
        let result = extractor.extract(kind, &signal);
        // Centred padding is n_fft / 2 on each side: with an odd n_fft, an empty signal is one
        // sample short of a frame (librosa rejects it too); anything else has frames.
        if odd_fft && signal.is_empty() {
            prop_assert!(result.is_err());
            return Ok(());
        }
        let features = result.expect("centred: at least one frame");
        let bad = features.as_slice().iter().position(|v| !v.is_finite());
        prop_assert_eq!(bad, None, "non-finite value in {:?}", features.as_slice());
    }

    #[test]
    fn centred_frames_are_one_plus_len_over_hop(
        params in params(),
        len in 0usize..5000,
        kind in kind(),
    ) {
        let (hop, n_fft) = (params.hop_length, params.n_fft);
        // librosa pads n_fft / 2 on each side: 1 + len / hop frames for an even n_fft (the
        // usual case), one fewer when n_fft is odd and hop divides len.
        let want = if n_fft % 2 == 0 {
            Some(1 + len / hop)
        } else {
            len.checked_sub(1).map(|room| 1 + room / hop)
        };
        let mut extractor = FeatureExtractor::new(params).expect("valid params");
        prop_assert_eq!(extractor.frame_count(len), want);
        let features = extractor.extract(kind, &vec![0.25; len]);
        prop_assert_eq!(features.ok().map(|f| f.frames()), want);
    }

    #[test]
    fn output_does_not_depend_on_earlier_signals(
        params in params(),
        earlier in signal(),
        signal in signal(),
        kind in kind(),
    ) {
        let fresh = FeatureExtractor::new(params.clone())
            .expect("valid params")
            .extract(kind, &signal)
            .ok();
        // The reused extractor's buffers hold whatever the earlier (often longer, louder or
        // differently shaped) signal left in them.
        let mut reused = FeatureExtractor::new(params).expect("valid params");
        // (An empty signal with an odd n_fft is an error for both; that must match too.)
        let _ = reused.extract(FeatureKind::LogMel, &earlier);
        let _ = reused.extract(FeatureKind::Mfcc, &earlier);
        let again = reused.extract(kind, &signal).ok();
        prop_assert_eq!(fresh, again);
    }
}

#[test]
fn all_zero_signal_is_the_amin_floor() {
    // Silence: every log-mel value is 10 log10(amin) = -100 dB, and c0 = -100 sqrt(n_mels).
    let mut extractor = FeatureExtractor::new(FeatureParams::new(16_000)).expect("defaults");
    let log_mel = extractor.log_mel(&[0.0; 16_000]).expect("extract");
    assert!(log_mel.as_slice().iter().all(|&v| v == -100.0));
    let mfcc = extractor.mfcc(&[0.0; 16_000]).expect("extract");
    let c0 = -100.0 * 128f32.sqrt();
    assert!(mfcc.row(0).iter().all(|&v| (v - c0).abs() < 1e-3));
    assert!(
        mfcc.as_slice()[mfcc.frames()..]
            .iter()
            .all(|&v| v.abs() < 1e-3)
    );
}
