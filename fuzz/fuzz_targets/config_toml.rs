//! The configuration file (`tern.example.toml` documents it): whatever an
//! operator writes gets a config or an error naming the key, never a panic.
//! The module is the server's own, compiled in here.
#![no_main]
#[allow(dead_code)]
#[path = "../../crates/tern/src/config.rs"]
mod config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(c) = config::Config::parse(text)
    {
        let _ = c.mta_sts_policy();
        let _ = c.client_services();
    }
});
