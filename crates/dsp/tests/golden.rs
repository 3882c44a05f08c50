//! Every golden case: synthesise the signal, write it as WAV, decode it, extract features and
//! compare each element with librosa's float64 result (tests/golden/dsp, made by generate.py).

mod common;

use common::manifest::cases;
use common::signals::encode;
use securepipe_dsp::{FeatureExtractor, decode_wav};

const TOLERANCE: f32 = 1e-3;

#[test]
fn every_golden_case_matches_librosa_within_tolerance() {
    let cases = cases();
    assert!(cases.len() >= 25, "only {} golden cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let encoded = encode(&case.channels, case.length, case.sample_rate, case.format);
        assert_eq!(
            encoded.sha256(),
            case.sha256,
            "{}: Rust and Python synthesised different samples",
            case.name
        );
        let channels = u16::try_from(case.channels.len()).expect("channels");
        let wav = encoded.wav(channels, case.sample_rate, case.format.bits);
        let audio = decode_wav(&wav).expect("decode");
        assert_eq!(
            (audio.sample_rate, audio.channels),
            (case.sample_rate, channels)
        );

        let params = case.options.params(audio.sample_rate);
        let mut extractor = FeatureExtractor::new(params).expect(&case.name);
        let features = extractor
            .extract(case.options.kind(), &audio.samples)
            .expect(&case.name);
        assert_eq!(
            [features.rows(), features.frames()],
            case.shape,
            "{}",
            case.name
        );

        let expected = case.expected();
        let (worst, at) = features
            .as_slice()
            .iter()
            .zip(&expected)
            .map(|(got, want)| (got - want).abs())
            .enumerate()
            .fold((0f32, 0), |(w, at), (i, d)| {
                if d > w || d.is_nan() { (d, i) } else { (w, at) }
            });
        println!("{:28} max |diff| {worst:.2e}", case.name);
        if worst.is_nan() || worst > TOLERANCE {
            let (row, frame) = (at / features.frames(), at % features.frames());
            failures.push(format!(
                "{}: |diff| {worst:.3e} at ({row}, {frame}): {} vs librosa {}",
                case.name,
                features.as_slice()[at],
                expected[at]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
