//! Header and frame parser of the AWS Encryption SDK message format, driven through the whole
//! decryptor (see `securepipe_envelope::fuzzing` for the input layout and the invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    securepipe_envelope::fuzzing::check(data);
});
