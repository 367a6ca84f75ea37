#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tcpflow_fuzz::engine::run(data);
});
