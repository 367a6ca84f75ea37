#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tcpflow_fuzz::http::run(data);
});
