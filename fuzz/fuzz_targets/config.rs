//! Config loader: any text either parses and validates (and survives a TOML round trip) or
//! is refused with one line; it never panics.
#![no_main]

use ferrocache::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            let _ = config.validate();
            let again = toml::to_string(&config).expect("a parsed config serializes");
            assert_eq!(Config::from_toml(&again).expect("and parses back"), config);
        }
        Err(message) => assert!(!message.contains('\n'), "multi-line error: {message}"),
    }
});
